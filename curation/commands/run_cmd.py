"""`curation run MANIFEST [beam options]`: run a manifest end to end and print its summary."""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mixes.manifest import LoadedManifest


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a manifest end to end (extra --options go to Apache Beam, e.g. --runner, --direct_num_workers)",
        description="Run a manifest: read, filter, dedupe, decontaminate, tokenize and write shards. Any option not "
        "listed here is a Beam pipeline option and passes through unchanged (default: DirectRunner on every core).",
    )
    p.add_argument("manifest", help="path to a mix manifest (YAML)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or phase lines: print only errors and the one-line result")
    p.set_defaults(handler=run, accepts_beam_args=True)


def run(args) -> int:
    from curation.pipeline import run as run_manifest
    from curation.summary import format_result, format_summary
    from mixes.manifest import load_manifest

    loaded = load_manifest(args.manifest)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        stats = run_manifest(loaded, args.beam_args, log=log)
    except BaseException:
        _log_traceback(loaded)
        raise
    print(format_result(stats) if args.quiet else format_summary(stats))
    return 0


def _log_traceback(loaded: LoadedManifest) -> None:
    """The console gets one line per failure; the run's log keeps the whole traceback. A log that cannot be
    written (the disk being full is a failure like any other) is given up, not raised over the failure."""
    from curation import storage
    from curation.layout import RunLayout

    m = loaded.manifest
    layout = RunLayout.for_manifest(loaded.resolve(m.output.path), m.name, m.version)
    if storage.is_s3(layout.root) or not os.path.isdir(layout.root):
        return
    with contextlib.suppress(OSError):
        os.makedirs(layout.path("logs"), exist_ok=True)
        with open(layout.path("logs", "run.log"), "a") as log:
            traceback.print_exc(file=log)

