"""`curation diff A B`: configuration changes and, per source, documents and tokens added and removed."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "diff",
        help="compare two manifests or two outputs: config changes by field path, documents and tokens per source",
    )
    p.add_argument("a", help="a manifest (YAML) or an output folder")
    p.add_argument("b", help="a manifest (YAML) or an output folder")
    p.set_defaults(handler=run)


def run(args) -> int:
    from curation.diff import diff

    print(diff(args.a, args.b))
    return 0
