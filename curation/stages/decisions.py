"""The corpus-level decisions of a run, persisted as one content-addressed folder: every pool's verdicts
(curation/stages/verdicts.py: kept with its dedup cluster and the spans to cut, rejected, or quarantined), and
for the ledger and reports the rejection rows, contamination matches and records quarantined by decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from curation import storage
from curation.document import Rejection

REJECTIONS = "rejections.jsonl.zst"
MATCHES = "matches.jsonl.zst"
QUARANTINE = "quarantine.jsonl.zst"
COMPLETE = "complete.json"


@dataclass
class Decisions:
    # Ledger rows: documents dropped whole, and span removals (detail["span_only"]).
    rejections: list[Rejection] = field(default_factory=list)
    # contamination matches, for the report
    matches: list[dict[str, Any]] = field(default_factory=list)
    # Records quarantined by decide (later occurrences of an id), as Quarantine dicts.
    quarantined: list[dict[str, Any]] = field(default_factory=list)


def write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> None:
    import zstandard

    data = b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows)
    with storage.atomic_write(uri) as f:
        f.write(zstandard.ZstdCompressor(level=3).compress(data))


def _read_rows(uri: str) -> list[dict[str, Any]]:
    with storage.open_decompressed(uri) as f:
        return [orjson.loads(line) for line in f]


def rejection_sort_key(r: Rejection) -> tuple:
    return (r.source, r.doc_id, r.stage, r.filter, r.reason)


def write_decisions(folder: str, decisions: Decisions) -> None:
    """Rows sorted by key so the files are byte-identical whatever order the workers produced them in. The
    folder is complete only once the run has checked every pool's verdicts (`mark_complete`)."""
    write_rows(storage.join(folder, REJECTIONS), (r.to_dict() for r in sorted(decisions.rejections, key=rejection_sort_key)))
    write_rows(storage.join(folder, MATCHES), sorted(decisions.matches, key=_canonical))
    write_rows(storage.join(folder, QUARANTINE), sorted(decisions.quarantined, key=_canonical))


def _canonical(row: dict[str, Any]) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


def mark_complete(folder: str) -> None:
    with storage.atomic_write(storage.join(folder, COMPLETE)) as f:
        f.write(b'{"complete": true}\n')


def decisions_complete(folder: str) -> bool:
    return storage.exists(storage.join(folder, COMPLETE))


def read_decisions(folder: str) -> Decisions:
    rejections = [Rejection(**r) for r in _read_rows(storage.join(folder, REJECTIONS))]
    return Decisions(rejections, _read_rows(storage.join(folder, MATCHES)), _read_rows(storage.join(folder, QUARANTINE)))
