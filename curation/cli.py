"""The `curation` command: one subcommand per module in curation/commands/, listed explicitly here."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import logging
import os
import sys
import threading
import traceback
from typing import NoReturn

import curation
from curation import progress
from curation.config import ConfigError
from curation.errors import expected_failure
from curation.interrupts import Interrupted, stop_cleanly_on_signals


def _subcommands():
    from curation.commands import (
        audit_cmd,
        card_cmd,
        diff_cmd,
        export_cmd,
        inspect_cmd,
        regenerate_cmd,
        run_cmd,
        stats_cmd,
        train_quality,
        validate_cmd,
    )

    return [run_cmd, validate_cmd, inspect_cmd, stats_cmd, train_quality, audit_cmd, regenerate_cmd, diff_cmd, card_cmd, export_cmd]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="curation",
        description="Turn raw web and domain corpora into tokenized pretraining mixes, reproducibly (Apache Beam).",
    )
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of a failure, not only its one-line error"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {curation.__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _subcommands():
        module.add_parser(subparsers)
    return parser


def _quiet_library_logs() -> None:
    """Beam and its optional GCP modules log set-up chatter at import; a user sees only our lines and errors."""
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # Worker failures are re-raised as our own errors; Beam's copy of the traceback would only bury them.
    logging.getLogger("apache_beam").setLevel(logging.CRITICAL)


def _with_beam_options(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """The command's arguments parsed again once Beam's options are taken out: argparse alone cannot know
    that in `--runner FlinkRunner manifest.yaml` the runner name belongs to an option it has never heard of.
    Words neither side knows go to Beam's check, which names them with the closest options of both. Beam's
    S3 options set this process's S3 client; workers read the same options from their pipeline's."""
    from curation import storage
    from curation.engine import beam_options, option_strings, split_beam_args

    ours, beam_args = split_beam_args(argv)
    args, unknown = parser.parse_known_args(ours)
    args.beam_args = beam_args + unknown
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    options = beam_options(args.beam_args, option_strings(commands[args.command]))
    storage.configure_s3(**storage.s3_client_settings(options.get_all_options()))
    return args


def main(argv: list[str] | None = None) -> int:
    _quiet_library_logs()
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    accepts_beam_args = getattr(args, "accepts_beam_args", False)
    if extra and not accepts_beam_args:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with stop_cleanly_on_signals(), progress.bars(not getattr(args, "quiet", False)):
            if accepts_beam_args:
                args = _with_beam_options(parser, argv)
            return int(args.handler(args) or 0)
    except Interrupted as exc:
        print(f"curation {args.command}: stopped by {exc}: {_AFTER_A_STOP}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"curation {args.command}: interrupted: {_AFTER_A_STOP}", file=sys.stderr)
        return 130
    except Exception as exc:
        explained = exc if isinstance(exc, ConfigError) else expected_failure(exc)
        if explained is None:
            raise  # a bug: its traceback is the report
        if args.debug:
            traceback.print_exception(exc, file=sys.stderr)
        print(f"curation {args.command}: error: {explained}", file=sys.stderr)
        return 2


_AFTER_A_STOP = "workers stopped, nothing unfinished was released; finished work is kept and a rerun resumes from it"


def entry() -> NoReturn:
    """The `curation` command: `main`, then an exit without the interpreter's teardown of every module and
    object the command made (about 0.5 CPU s after a run, for a process that is ending anyway). The exit
    handlers run first as at any exit (logging's flush, the worker pool's stop, temporary folders'
    finalizers), then the standard streams are flushed. A thread still working gets the ordinary exit,
    which waits for it."""
    code = main()
    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        raise SystemExit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe or stream: nothing left to say
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
