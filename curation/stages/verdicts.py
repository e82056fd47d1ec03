"""Positive accounting: every pooled document ends decide with exactly one explicit verdict (kept, rejected with
stage, filter and reason, or quarantined), and a verdict is only "kept" when every stage that ran said so from
its own survivors. A document that some stage never judged fails the run; it can never ship as kept.

Each stage (quality, dedupe, decontamination) reports on a document in a small record keyed by (source, id).
Those records are joined to the document's pool position by the locator decide's first step emits for every
document it reads; then every pool's records (plus its duplicate-id quarantines) are assembled in pool order,
checked against the pool's document count, and written as that pool's verdict file, which is all the tokenize
step reads of the decisions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from curation import storage
from curation.errors import AccountingError
from curation.stages.decisions import write_rows
from curation.stages.ids import DUPLICATE_ID

KEPT, REJECTED, QUARANTINED = "kept", "rejected", "quarantined"

# What one stage says of one document: (stage, KEPT | REJECTED | EDIT, payload). Payloads: a kept
# document's dedup cluster ({"cluster_id", "cluster_size"}) or cut spans ({"decontaminate": [[s, e]...]}),
# a rejection's dict, an edit's spans ({"paragraph": [[s, e], ...]}).
EDIT = "edit"
StageRecord = tuple[str, str, dict[str, Any]]

# The parts a pool position is assembled from, (kind, payload): the id check's quarantine (DUPLICATE_ID), or
# every stage's records on the document joined to its position.
DECIDED = "decided"
PoolPart = tuple[int, str, tuple[str, Any]]  # (position in the pool, doc id, (kind, payload))

VERDICTS_DIR = "verdicts"


def located_parts(
    key: tuple[str, str], locators: list[tuple[int, int]], records: list[StageRecord]
) -> Iterator[tuple[int, PoolPart]]:
    """The corpus stages' records on one (source, id), sent to the document's (pool ordinal, position)."""
    source, doc_id = key
    if len(locators) != 1:
        what = "never located" if not locators else f"located {len(locators)} times"
        stages = sorted({stage for stage, _, _ in records})
        raise AccountingError(
            f"decide: document {doc_id!r} of source {source!r} was {what} but judged by {stages}: "
            "the run's records are inconsistent; nothing was published"
        )
    ordinal, position = locators[0]
    yield ordinal, (position, doc_id, (DECIDED, list(records)))


def pool_verdicts(
    pool_name: str, documents: int, parts: Iterable[PoolPart], stages: tuple[str, ...]
) -> list[dict[str, Any]]:
    """One verdict per position 0..documents-1 of a pool, in pool order, from the parts stages reported.

    Raises AccountingError when a position has no part or several, or when a document lacks the verdict of
    one of `stages` (the stages that ran, in order, quality first) that it reached."""
    by_position: dict[int, list[tuple[str, tuple[str, Any]]]] = {}
    for position, doc_id, part in parts:
        by_position.setdefault(position, []).append((doc_id, part))
    problems: list[str] = []
    unknown = sorted(p for p in by_position if not 0 <= p < documents)
    if unknown:
        problems.append(f"verdicts for positions {unknown[:3]} beyond its {documents} documents")
    rows = []
    for position in range(documents):
        found = by_position.get(position, [])
        if len(found) != 1:
            problems.append(f"document {position} has {len(found)} verdicts" + (f" ({found[0][0]!r})" if found else ""))
            continue
        doc_id, (kind, payload) = found[0]
        row, problem = _verdict(doc_id, kind, payload, stages)
        if problem:
            problems.append(f"document {position} ({doc_id!r}) {problem}")
        rows.append({"i": position, "id": doc_id, **row})
    if problems:
        more = f" and {len(problems) - 3} more" if len(problems) > 3 else ""
        raise AccountingError(f"decide: pool {pool_name}: {'; '.join(problems[:3])}{more}; nothing was published")
    return rows


def _verdict(doc_id: str, kind: str, payload: Any, stages: tuple[str, ...]) -> tuple[dict[str, Any], str | None]:
    if kind == DUPLICATE_ID:
        return {"verdict": QUARANTINED, **payload}, None
    said: dict[str, list[tuple[str, dict]]] = {}
    edits: dict[str, Any] = {}
    for stage, what, detail in payload:
        if what == EDIT:
            edits.update(detail)
        else:
            said.setdefault(stage, []).append((what, detail))
    cluster = None
    for stage in stages:
        verdicts = said.get(stage, [])
        if len(verdicts) != 1:
            return {}, f"has {len(verdicts)} verdicts from {stage}"
        what, detail = verdicts[0]
        if what == REJECTED:
            return {"verdict": REJECTED, **_rejection_fields(detail)}, None
        if "cluster_id" in detail:
            cluster = detail
        else:
            edits.update(detail)
    row: dict[str, Any] = {"verdict": KEPT}
    if cluster is not None:
        row["cluster"] = cluster
    if edits:
        row["edit"] = edits
    return row, None


def _rejection_fields(rejection: dict[str, Any]) -> dict[str, Any]:
    return {"stage": rejection["stage"], "filter": rejection["filter"], "reason": rejection["reason"]}


def verdicts_uri(folder: str, pool_digest: str) -> str:
    return storage.join(folder, VERDICTS_DIR, f"{pool_digest}.jsonl.zst")


def counts_uri(folder: str, pool_digest: str) -> str:
    return storage.join(folder, VERDICTS_DIR, f"{pool_digest}.counts.json")


def write_pool_verdicts(folder: str, pool_digest: str, rows: list[dict[str, Any]]) -> dict[str, int]:
    """The pool's verdict file, then its counts (written last: their presence means the file is whole)."""
    write_rows(verdicts_uri(folder, pool_digest), rows)
    counts = {KEPT: 0, REJECTED: 0, QUARANTINED: 0}
    for r in rows:
        counts[r["verdict"]] += 1
    with storage.atomic_write(counts_uri(folder, pool_digest)) as f:
        f.write(orjson.dumps(counts, option=orjson.OPT_SORT_KEYS))
    return counts


def read_pool_verdicts(folder: str, pool_digest: str) -> Iterator[dict[str, Any]]:
    with storage.open_decompressed(verdicts_uri(folder, pool_digest)) as f:
        for line in f:
            yield orjson.loads(line)


def read_pool_counts(folder: str, pool_digest: str) -> dict[str, int] | None:
    uri = counts_uri(folder, pool_digest)
    if not storage.exists(uri):
        return None
    with storage.open_binary(uri) as f:
        return orjson.loads(f.read())
