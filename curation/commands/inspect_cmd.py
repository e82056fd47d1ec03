"""`curation inspect PATH`: a few documents and the counts of any supported input, local or S3."""

from __future__ import annotations

import collections
import textwrap

from curation.document import Document


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="show a few documents and counts from an input (file, glob or s3:// URI)")
    p.add_argument("path", help="input file, glob pattern or s3:// URI")
    p.add_argument("-n", "--show", type=int, default=3, help="documents to print (default 3)")
    p.add_argument("--format", default="auto", choices=["auto", "jsonl", "parquet", "warc", "wet"])
    p.add_argument("--text-field", default="text")
    p.add_argument("--id-field", default="id")
    p.add_argument("--chars", type=int, default=300, help="characters of text to print per document")
    p.set_defaults(handler=run)


def run(args) -> int:
    from curation import storage
    from curation.document import Quarantine, Skipped
    from curation.readers import read_source_file
    from mixes.manifest import SourceConfig

    source = SourceConfig(name="inspect", paths=[args.path], format=args.format, text_field=args.text_field, id_field=args.id_field)
    uris = storage.list_files(args.path)
    documents = 0
    text_chars = 0
    quarantined: collections.Counter[str] = collections.Counter()
    skipped: collections.Counter[str] = collections.Counter()
    for uri in uris:
        for record in read_source_file(source, uri):
            if isinstance(record, Quarantine):
                quarantined[record.reason] += 1
                continue
            if isinstance(record, Skipped):
                skipped[record.reason] += 1
                continue
            assert isinstance(record, Document)
            if documents < args.show:
                _print_document(record, args.chars)
            documents += 1
            text_chars += len(record.text)
    print(f"files: {len(uris)}  documents: {documents}  text characters: {text_chars:,}")
    if quarantined:
        print("quarantined: " + ", ".join(f"{reason} {n}" for reason, n in sorted(quarantined.items())))
    if skipped:
        print("skipped by design: " + ", ".join(f"{reason} {n}" for reason, n in sorted(skipped.items())))
    return 0


def _print_document(doc: Document, chars: int) -> None:
    where = doc.provenance
    place = f"line {where.line}" if where and where.line is not None else f"offset {where.offset}" if where else ""
    print(f"--- {doc.id}  ({where.uri if where else ''} {place})")
    if doc.url:
        print(f"url: {doc.url}")
    text = doc.text if len(doc.text) <= chars else doc.text[:chars] + " …"
    print(textwrap.indent(text, "  "))
