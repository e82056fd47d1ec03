"""What happens to a contaminated document, per the manifest: dropped whole, or its matched spans cut out
(GPT-3 / NeMo Curator style), with a ledger row for the document or for each removed span.
"""

from __future__ import annotations

from dataclasses import dataclass

from curation.document import Document, Rejection
from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.detect import Match
from filters.decontaminate.index import FILTER_NAME
from filters.decontaminate.spans import TOO_MANY_SPLITS, cut_ranges, remove_spans

STAGE = "decontaminate"
CONTAMINATED = "contaminated"
CONTAMINATED_SPAN = "contaminated_span"
# Ledger rows list at most this many matches, so one pathological document cannot bloat the ledger.
MAX_MATCHES_IN_DETAIL = 20


@dataclass(frozen=True, slots=True)
class Outcome:
    """The documents that go on (the original if clean, its pieces if cut), ledger rows and the cut ranges."""

    documents: list[Document]
    rejections: list[Rejection]
    cuts: list[tuple[int, int]]


def apply_action(doc: Document, matches: list[Match], config: DecontaminateConfig) -> Outcome:
    if not matches:
        return Outcome([doc], [], [])
    best = max(matches, key=lambda m: (m.score, -m.start))
    if config.action == "drop_document":
        return Outcome([], [_rejection(doc, CONTAMINATED, best, matches)], [])
    result = remove_spans(
        doc,
        [(m.start, m.end) for m in matches],
        config.span_margin_chars,
        config.min_piece_chars,
        config.max_splits,
    )
    if result == TOO_MANY_SPLITS:
        return Outcome([], [_rejection(doc, TOO_MANY_SPLITS, best, matches)], [])
    cuts = cut_ranges([(m.start, m.end) for m in matches], len(doc.text), config.span_margin_chars)
    rows = [_rejection(doc, CONTAMINATED_SPAN, m, [m]) for m in matches]
    if isinstance(result, str):
        return Outcome([], [*rows, _rejection(doc, result, best, matches)], cuts)
    return Outcome(result, rows, cuts)


def _rejection(doc: Document, reason: str, best: Match, matches: list[Match]) -> Rejection:
    detail = {**best.to_dict(), "matches_total": len(matches)}
    if len(matches) > 1:
        detail["matches"] = [m.to_dict() for m in matches[:MAX_MATCHES_IN_DETAIL]]
    return Rejection(
        doc_id=doc.id,
        source=doc.source,
        stage=STAGE,
        filter=FILTER_NAME,
        reason=reason,
        score=round(best.score, 4),
        detail=detail,
        uri=doc.provenance.uri if doc.provenance else None,
    )
