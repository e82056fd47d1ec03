"""`curation regenerate LOCKFILE [--verify] [--input-root OLD=NEW] [beam options]`: rebuild a release from its lock and prove it."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "regenerate",
        help="rebuild an output from its lock.json (inputs checked first) and compare every output checksum",
        description="Check every locked input, rebuild the output from its manifest and, with --verify, compare "
        "every output file with the lock and the old copy. A local output is moved aside and rebuilt in place; "
        "one on S3 (or given --into) stays as it is and is rebuilt under a separate output path. Extra --options "
        "go to Beam.",
    )
    p.add_argument("lockfile", help="the lock.json of an output, local or s3://")
    p.add_argument(
        "--verify", action="store_true", help="compare every rebuilt output with the lock and the old copy"
    )
    p.add_argument(
        "--keep-previous",
        action="store_true",
        help="keep the old output (<output>.previous), or the rebuild made under --into, even when identical",
    )
    p.add_argument(
        "--into",
        metavar="OUTPUT_PATH",
        help="rebuild under this empty output path (local or s3://) and leave the release untouched; "
        "for a release on S3 the default is <output.path>/_regenerate",
    )
    p.add_argument(
        "--input-root",
        action="append",
        default=[],
        metavar="OLD=NEW",
        help="inputs (and tokenizer, models, lists, eval sets) the lock names under folder OLD (relative to the "
        "manifest's folder as the lock writes it, `.` for that folder itself, or an s3:// prefix) are now under NEW; "
        "each is still checked by size and sha256. Repeatable",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars or phase lines: print only errors and the result")
    p.set_defaults(handler=run, accepts_beam_args=True)


def run(args) -> int:
    from curation.places import parse_move
    from curation.regenerate import format_report, regenerate

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    report = regenerate(
        args.lockfile,
        args.beam_args,
        verify=args.verify,
        keep_previous=args.keep_previous,
        log=log,
        into=args.into,
        moves=tuple(parse_move(text) for text in args.input_root),
    )
    print(format_report(report, args.verify))
    return 0 if report.identical else 1
