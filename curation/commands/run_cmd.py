"""`curation run MANIFEST [beam options]`: run a manifest end to end and print its summary."""

from __future__ import annotations

import sys

from mixes.manifest import load_manifest


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "run",
        help="run a manifest end to end (extra --options go to Apache Beam, e.g. --runner, --direct_num_workers)",
        description="Run a manifest: read, filter, dedupe, decontaminate, tokenize and write shards. Any option not "
        "listed here is a Beam pipeline option and passes through unchanged (default: DirectRunner on every core).",
    )
    p.add_argument("manifest", help="path to a mix manifest (YAML)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary")
    p.set_defaults(handler=run, accepts_beam_args=True)


def run(args) -> int:
    from curation.pipeline import run as run_manifest
    from curation.report import format_summary

    loaded = load_manifest(args.manifest)

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    stats = run_manifest(loaded, args.beam_args, log=log)
    print(format_summary(stats))
    return 0
