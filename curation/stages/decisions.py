"""The corpus-level decisions of a run, persisted as one content-addressed folder: which documents are
dropped (quality, dedupe, decontamination), the dedup cluster of each kept document, and the spans to cut
from kept documents. Small records only: this is what the tokenize step loads on every worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from curation import storage
from curation.document import DocKey, Rejection

REJECTIONS = "rejections.jsonl.zst"
CLUSTERS = "clusters.jsonl.zst"
EDITS = "edits.jsonl.zst"
MATCHES = "matches.jsonl.zst"
COMPLETE = "complete.json"



@dataclass
class Decisions:
    rejections: list[Rejection] = field(default_factory=list)
    # (source, doc id) -> {"cluster_id": str, "cluster_size": int}
    clusters: dict[DocKey, dict[str, Any]] = field(default_factory=dict)
    # (source, doc id) -> {"paragraph": [[start, end], ...], "decontaminate": [[start, end], ...]}
    edits: dict[DocKey, dict[str, list[list[int]]]] = field(default_factory=dict)
    # contamination matches, for the report
    matches: list[dict[str, Any]] = field(default_factory=list)

    def dropped(self) -> set[DocKey]:
        """Documents dropped whole (span rejections only cut text)."""
        return {(r.source, r.doc_id) for r in self.rejections if not (r.detail or {}).get("span_only")}


def _write_rows(uri: str, rows: Iterable[dict[str, Any]]) -> None:
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
    """Rows sorted by key so the files are byte-identical whatever order the workers produced them in."""
    _write_rows(storage.join(folder, REJECTIONS), (r.to_dict() for r in sorted(decisions.rejections, key=rejection_sort_key)))
    _write_rows(
        storage.join(folder, CLUSTERS),
        ({"source": s, "id": i, **v} for (s, i), v in sorted(decisions.clusters.items())),
    )
    _write_rows(storage.join(folder, EDITS), ({"source": s, "id": i, **v} for (s, i), v in sorted(decisions.edits.items())))
    _write_rows(storage.join(folder, MATCHES), sorted(decisions.matches, key=lambda m: orjson.dumps(m, option=orjson.OPT_SORT_KEYS)))
    with storage.atomic_write(storage.join(folder, COMPLETE)) as f:
        f.write(b'{"complete": true}\n')


def decisions_complete(folder: str) -> bool:
    return storage.exists(storage.join(folder, COMPLETE))


def read_decisions(folder: str) -> Decisions:
    rejections = [Rejection(**r) for r in _read_rows(storage.join(folder, REJECTIONS))]
    clusters = {(r.pop("source"), r.pop("id")): r for r in _read_rows(storage.join(folder, CLUSTERS))}
    edits = {(r.pop("source"), r.pop("id")): r for r in _read_rows(storage.join(folder, EDITS))}
    matches = _read_rows(storage.join(folder, MATCHES))
    return Decisions(rejections, clusters, edits, matches)
