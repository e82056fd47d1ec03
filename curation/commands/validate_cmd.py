"""`curation validate MANIFEST`: check a manifest and the files it names without running it."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "validate",
        help="check a manifest (schema, filters, sources, mix; tokenizer, models, eval sets) without running it",
    )
    p.add_argument("manifest", help="path to a mix manifest (YAML)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from curation.preflight import check_files
    from mixes.manifest import load_manifest

    loaded = load_manifest(args.manifest)
    check_files(loaded)
    m = loaded.manifest
    print(f"{args.manifest}: valid — {m.name} {m.version}, {len(m.sources)} sources, manifest sha256 {loaded.sha256[:16]}")
    for s in m.sources:
        uses = ", ".join(f["use"] for f in s.filters) or "no filters"
        print(f"  {s.name}: {len(s.paths)} path patterns, {uses}")
    return 0
