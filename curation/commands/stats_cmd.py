"""`curation stats OUTPUT`: tokens and documents per source, repetition applied, achieved vs requested."""

from __future__ import annotations

import orjson

from curation import storage


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("stats", help="tokens and documents per source of a finished output, with achieved vs requested ratios")
    p.add_argument("output", help="an output folder (<output.path>/<name>/<version>)")
    p.add_argument("--json", action="store_true", help="print stats.json as is")
    p.set_defaults(handler=run)


def load_stats(output: str) -> dict:
    from curation.errors import InputError
    from curation.release_state import check_complete

    check_complete(output)
    path = storage.join(output, "stats.json")
    if not storage.exists(path):
        raise InputError(f"{output}: no stats.json here; is this a finished output folder (<path>/<name>/<version>)?")
    with storage.open_binary(path) as f:
        try:
            return orjson.loads(f.read())
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{path}: invalid JSON ({exc}); `curation regenerate` rebuilds the release") from None


def run(args) -> int:
    stats = load_stats(args.output)
    if args.json:
        print(orjson.dumps(stats, option=orjson.OPT_INDENT_2).decode())
        return 0
    from curation.summary import format_mix_table

    print(format_mix_table(stats))
    return 0
