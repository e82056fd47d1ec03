"""`curation export OUTPUT --format hf DEST`: a finished release's curated documents as a dataset folder
another ecosystem loads: `hf` is Hugging Face `datasets` (Parquet per source, the card as README.md)."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "export",
        help="write a release's documents as a Hugging Face dataset folder (Parquet + README.md card)",
        description="Write the curated documents of a finished release to DEST, a new or empty folder (local or "
        "s3://), as data/<source>/part-NNNNN.parquet in one schema for every source, with the dataset card as "
        "README.md; datasets.load_dataset(DEST) loads every source, load_dataset(DEST, SOURCE) one.",
    )
    p.add_argument("output", help="a finished output folder (<output.path>/<name>/<version>)")
    p.add_argument("--format", choices=["hf"], required=True, help="hf: Hugging Face datasets")
    p.add_argument("dest", help="a new or empty folder, local or s3://")
    p.add_argument("--quiet", action="store_true", help="print only the README's path")
    p.set_defaults(handler=run)


def run(args) -> int:
    from curation.export_hf import export_hf

    def log(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    print(export_hf(args.output.rstrip("/"), args.dest.rstrip("/"), log))
    return 0
