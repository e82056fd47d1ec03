"""`curation audit OUTPUT`: the document holding a token (--shard, --offset), every decision about a document
(--doc), or what became of an input record (--input with --line or --byte-offset)."""

from __future__ import annotations

import os

import orjson

from curation import storage
from curation.document import PIECE_MARK
from curation.errors import InputError


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "audit",
        help="trace a token or a document of a finished output back to its input and every decision about it",
        description="Query the audit index of an output (written at the end of every run under audit/).",
    )
    p.add_argument("output", help="an output folder (<output.path>/<name>/<version>)")
    p.add_argument("--shard", help="shard number or name (3, part-00003) holding the token")
    p.add_argument("--offset", type=int, help="token offset within --shard")
    p.add_argument("--doc", help="document id: list every decision about it")
    p.add_argument("--source", help="source of --doc, when the id is in several sources")
    p.add_argument(
        "--input",
        help="input file, with --line or --byte-offset: what became of that record. A local file of a local "
        "release by its path; otherwise as the release names it (relative to the manifest's folder, or s3://)",
    )
    p.add_argument(
        "--line", type=int, help="line (JSONL) or row (Parquet) of --input, as the readers count it"
    )
    p.add_argument("--byte-offset", type=int, help="byte offset (WARC record) of --input")
    p.add_argument("--text", action="store_true", help="also print the document's curated text")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document: the index record (a list of records for --input), with --text in its "
        "\"text\" field",
    )
    p.add_argument(
        "--build-index", action="store_true", help="(re)build OUTPUT/audit/ from the output's files"
    )
    p.set_defaults(handler=run)


def run(args) -> int:
    from curation import audit
    from curation.lock import read_lock
    from curation.release_state import check_complete

    check_complete(args.output)
    if args.build_index:
        # Building the index runs a pipeline: only here does audit import Beam.
        from curation.lock import pool_uris
        from curation.stages.audit_index import build_audit_index

        n = build_audit_index(args.output, pool_uris(read_lock(f"{args.output}/lock.json"), args.output))
        print(f"{args.output}/audit: {n:,} records")
        return 0
    with audit.AuditIndex(args.output) as index:
        if args.shard is not None or args.offset is not None:
            if args.shard is None or args.offset is None:
                raise InputError("--shard and --offset go together")
            hit = index.at_token(args.shard, args.offset)
            records, text_of, shown = [hit.record], hit.placement["id"], audit.format_token_hit(hit)
        elif args.doc is not None:
            records = [index.document(args.doc, args.source)]
            text_of, shown = (args.doc if PIECE_MARK in args.doc else None), audit.format_record(records[0])
        elif args.input is not None:
            if (args.line is None) == (args.byte_offset is None):
                raise InputError("--input needs exactly one of --line or --byte-offset")
            records, text_of = index.at_input(recorded_input(args.output, args.input), args.line, args.byte_offset), None
            if not records and not args.json:
                print(f"nothing recorded at that place of {args.input}")
                return 1
            shown = "\n".join(audit.format_record(r) for r in records)
        else:
            raise InputError("give --shard and --offset, --doc, --input, or --build-index")
        texts = [index.text(r, text_of) for r in records] if args.text else None
    if args.json:
        print(_as_json(records, texts, many=args.input is not None))
        return 0 if records else 1
    print(shown)
    for text in texts or []:
        print("--- text" if text is not None else "--- no curated text: the document did not reach the output")
        if text is not None:
            print(text)
    return 0


def _as_json(records: list[dict], texts: list[str | None] | None, many: bool) -> str:
    """One JSON document: the record (a list of them for --input, which may name several), each with its
    curated text under "text" (null when it did not reach the output) when --text is given."""
    if texts is not None:
        records = [r | {"text": t} for r, t in zip(records, texts)]
    return orjson.dumps(records if many else records[0]).decode()


def recorded_input(output: str, given: str) -> str:
    """--input as the release names its inputs (curation.places): a local file that exists, of a local
    release, named from the manifest's folder that the release's lock locates; anything else as written."""
    from curation.lock import locked_manifest_path, read_lock
    from curation.places import recorded_name

    if storage.is_s3(given) or storage.is_s3(output) or not os.path.isfile(given):
        return given
    root = os.path.realpath(output)
    base = os.path.dirname(locked_manifest_path(read_lock(os.path.join(root, "lock.json")), root))
    # The manifest's folder and the globs' folders were resolved when the inputs were named; the file itself not.
    return recorded_name(os.path.join(os.path.realpath(os.path.dirname(given)), os.path.basename(given)), base)
