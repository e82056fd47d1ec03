"""The mix plan of one source with the whole source in memory: the reference that the planning pipeline
(curation.stages.mix_plan, which runs the same steps of mixes.sampling on workers) is checked against, and
what the sampling semantics are tested on."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from mixes.sampling import (
    Candidate,
    DocTokens,
    candidate_key,
    check_feasible,
    document_weight,
    expected_copies,
    order_key,
    scale_meeting_budget,
    take_fractional_copies,
)

MixEntry = tuple[str, str, int]


@dataclass(frozen=True)
class SourcePlan:
    """How many copies of each document a source contributes to the mix."""

    source: str
    requested_tokens: int
    available_tokens: int
    achieved_tokens: int
    # doc_id -> copies written; documents left out are absent.
    copies: dict[str, int]

    @property
    def repetition_factor(self) -> float:
        """Achieved tokens over one copy of every document: < 1 downsampled, > 1 upsampled."""
        return self.achieved_tokens / self.available_tokens if self.available_tokens else 0.0

    @property
    def max_copies(self) -> int:
        return max(self.copies.values(), default=0)

    def entries(self) -> Iterator[MixEntry]:
        for doc_id, copies in self.copies.items():
            for repetition in range(copies):
                yield (self.source, doc_id, repetition)


def plan_source(
    source: str,
    seed: int,
    docs: Sequence[DocTokens],
    budget_tokens: int,
    max_repetition: float = 1.0,
    weight_by_cluster_size: bool = False,
) -> SourcePlan:
    """Copies per document so the source gives budget_tokens, within half a document's tokens.

    Each document's expected copies are min(f * weight, max_repetition) for the one f that meets the budget
    (weight 1, or its dedup cluster size for FineWeb-2 rehydration). Whole copies are given outright; the
    fractional copies go to documents in order of hash / fraction (sequential Poisson sampling, which keeps
    each document's chance near its fraction), taken while they fit the budget. So downsampling takes
    documents in hash order, and max_repetition 2.5 gives every document two copies and half a third one.
    """
    doc_ids = [d[0] for d in docs]
    if len(set(doc_ids)) != len(doc_ids):
        raise ValueError(f"source {source!r} lists a document id more than once")
    available = sum(d[1] for d in docs)
    check_feasible({source: budget_tokens}, {source: available}, {source: max_repetition})
    weights = [document_weight(d[2] if len(d) > 2 else 1, weight_by_cluster_size) for d in docs]
    groups: dict[float, int] = {}
    for d, weight in zip(docs, weights):
        groups[weight] = groups.get(weight, 0) + d[1]
    scale = scale_meeting_budget(groups, budget_tokens, max_repetition)
    copies: dict[str, int] = {}
    candidates = []
    for (doc_id, n_tokens, *_), weight in zip(docs, weights):
        whole, fraction = expected_copies(scale, weight, max_repetition)
        if whole:
            copies[doc_id] = whole
        if fraction > 0:
            candidates.append(Candidate(candidate_key(seed, source, doc_id, fraction), doc_id, n_tokens))
    tokens_of = {d[0]: d[1] for d in docs}
    gap = budget_tokens - sum(tokens_of[doc_id] * n for doc_id, n in copies.items())
    for taken in take_fractional_copies(sorted(candidates), gap):
        copies[taken.doc_id] = copies.get(taken.doc_id, 0) + 1
    return SourcePlan(
        source=source,
        requested_tokens=budget_tokens,
        available_tokens=available,
        achieved_tokens=sum(tokens_of[doc_id] * n for doc_id, n in copies.items()),
        copies={doc_id: copies[doc_id] for doc_id in doc_ids if doc_id in copies},
    )


def shuffle_order(seed: int, entries: Iterable[MixEntry]) -> list[MixEntry]:
    """A seeded order of (source, doc_id, repetition) entries that does not depend on the input order."""
    return sorted(entries, key=lambda entry: order_key(seed, *entry))
