"""`curation card OUTPUT`: (re)write card.md and card.html of a finished output from its stats and lock."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "card", help="write the dataset card (card.md, self-contained card.html) of an output"
    )
    p.add_argument("output", help="an output folder (<output.path>/<name>/<version>)")
    p.set_defaults(handler=run)


def run(args) -> int:
    from curation.card import write_card
    from curation.lock import read_lock

    for path in write_card(args.output, read_lock(f"{args.output}/lock.json")):
        print(path)
    return 0
