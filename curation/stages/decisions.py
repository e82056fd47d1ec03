"""The corpus-level decisions of a run, persisted as one content-addressed folder: every pool's verdicts
(curation/stages/verdicts.py: kept with its dedup cluster and the spans to cut, rejected, or quarantined), and
for the ledger and reports the rejection rows, contamination matches and records quarantined by decide."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from curation import storage
from curation.document import Rejection
from curation.stages.sorted_runs import canonical, write_merged

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


def ledger_key(row: dict[str, Any]) -> tuple:
    """The ledger's order: a document's rows together, by stage, filter and reason."""
    return (row["source"], row["doc_id"], row["stage"], row["filter"], row["reason"])


def _rejection_row_key(row: dict[str, Any]) -> tuple:
    # The whole row breaks ties, so two rows for one document, stage, filter and reason keep one order.
    return (*ledger_key(row), canonical(row))


# What decide gathers from the whole corpus: kind -> (file in the decisions folder, the rows' order).
GATHERED = {
    "rejections": (REJECTIONS, _rejection_row_key),
    "matches": (MATCHES, canonical),
    "quarantined": (QUARANTINE, canonical),
}


def write_decisions(folder: str, runs: list[tuple[str, str]]) -> None:
    """Each gathered kind's sorted runs ((kind, run file) pairs) merged into its file, sorted by key, so
    the files are byte-identical whatever order the workers produced the rows in. The folder is complete
    only once the run has checked every pool's verdicts (`mark_complete`)."""
    for kind, (name, key) in GATHERED.items():
        write_merged(storage.join(folder, name), [uri for k, uri in runs if k == kind], key)


def mark_complete(folder: str) -> None:
    with storage.atomic_write(storage.join(folder, COMPLETE)) as f:
        f.write(b'{"complete": true}\n')


def decisions_complete(folder: str) -> bool:
    return storage.exists(storage.join(folder, COMPLETE))


def read_decisions(folder: str) -> Decisions:
    rejections = [Rejection(**r) for r in _read_rows(storage.join(folder, REJECTIONS))]
    return Decisions(rejections, _read_rows(storage.join(folder, MATCHES)), _read_rows(storage.join(folder, QUARANTINE)))


def read_matches(folder: str) -> list[dict[str, Any]]:
    """The contamination matches, for the report: one row per matched benchmark item, not per document."""
    return _read_rows(storage.join(folder, MATCHES))
