"""Token budgets per source and the documents that fill them (Dolma / OLMo mixes): largest-remainder
apportionment, seeded per-document selection with repetition (FineWeb-2 rehydration by cluster size as an
option), and a seeded global order. Every choice is a digest of (seed, source, doc id), never arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import xxhash

from curation.errors import InfeasibleMixError

# (doc_id, n_tokens) or (doc_id, n_tokens, cluster_size)
DocTokens = tuple[str, int] | tuple[str, int, int]
# (source, doc_id, repetition_index)
MixEntry = tuple[str, str, int]

_HASH_SPAN = float(1 << 64)


def apportion(
    target_tokens: int, ratios: Mapping[str, float], fixed_tokens: Mapping[str, int] | None = None
) -> dict[str, int]:
    """Token budget per source: a ratio is a share of target_tokens, a fixed budget is kept as given.

    Ratio budgets are exact shares rounded by largest remainder (ties to the earlier name), so with ratios
    summing to 1 they add up to target_tokens exactly. Fixed budgets count towards target_tokens: more than
    it in total is refused. Ratios are read as the decimals written (0.95 is 19/20, not the nearest float).
    """
    fixed = dict(fixed_tokens or {})
    both = sorted(set(fixed) & set(ratios))
    if both:
        raise ValueError(f"sources {both} give both a ratio and a token budget")
    shares = {name: Fraction(repr(float(r))) for name, r in ratios.items()}
    quotas = {name: share * target_tokens for name, share in shares.items()}
    ratio_total = round(sum(quotas.values(), Fraction(0)))
    budgets = {name: math.floor(q) for name, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda name: (-(quotas[name] - budgets[name]), name))
    for name in by_remainder[: ratio_total - sum(budgets.values())]:
        budgets[name] += 1
    committed = ratio_total + sum(fixed.values())
    if committed > target_tokens:
        raise InfeasibleMixError(
            f"mix asks for {committed:,} tokens ({ratio_total:,} by ratio, {sum(fixed.values()):,} fixed), "
            f"more than target_tokens {target_tokens:,}; lower the ratios or the fixed budgets"
        )
    return {**budgets, **fixed}


def check_feasible(
    budget_tokens: Mapping[str, int],
    available_tokens: Mapping[str, int],
    max_repetition: Mapping[str, float],
) -> None:
    """Refuse, from token counts alone, every source asked for more than its documents times max_repetition."""
    problems = []
    for source in sorted(budget_tokens):
        most = math.floor(available_tokens.get(source, 0) * max_repetition[source])
        if budget_tokens[source] > most:
            problems.append(
                f"source {source!r} is short by {budget_tokens[source] - most:,} tokens: "
                f"{budget_tokens[source]:,} requested, {available_tokens.get(source, 0):,} available "
                f"x max_repetition {max_repetition[source]:g} = {most:,}"
            )
    if problems:
        raise InfeasibleMixError("; ".join(problems))


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
    tokens = np.fromiter((d[1] for d in docs), dtype=np.int64, count=len(docs))
    available = int(tokens.sum())
    check_feasible({source: budget_tokens}, {source: available}, {source: max_repetition})
    if weight_by_cluster_size:
        weights = np.fromiter(
            (max(d[2] if len(d) > 2 else 1, 1) for d in docs), dtype=np.float64, count=len(docs)
        )
    else:
        weights = np.ones(len(docs))

    expected = np.minimum(
        _scale_meeting_budget(tokens, weights, budget_tokens, max_repetition) * weights, max_repetition
    )
    whole = np.floor(expected).astype(np.int64)
    fraction = expected - whole
    gap = budget_tokens - int((whole * tokens).sum())

    candidates = np.flatnonzero(fraction > 0)
    uniform = np.array([_unit_hash(seed, source, doc_ids[i]) for i in candidates], dtype=np.float64)
    keys = uniform / fraction[candidates]
    names = np.array([doc_ids[i] for i in candidates], dtype=object)
    extra = np.zeros(len(docs), dtype=np.int64)
    for i in candidates[np.lexsort((names, keys))]:
        if gap <= 0:
            break
        # First fit: a document that would overshoot is skipped, a later smaller one may still fit.
        if tokens[i] <= gap:
            extra[i] = 1
            gap -= int(tokens[i])
    if gap > 0:
        # Documents are never split, so a gap smaller than every remaining document is closed by the one
        # that lands nearest the budget, when overshooting by it misses by less than stopping short does.
        left = [i for i in candidates if not extra[i] and tokens[i] < 2 * gap]
        if left:
            nearest = min(left, key=lambda i: (abs(gap - int(tokens[i])), doc_ids[i]))
            extra[nearest] = 1

    copies_per_doc = whole + extra
    return SourcePlan(
        source=source,
        requested_tokens=budget_tokens,
        available_tokens=available,
        achieved_tokens=int((copies_per_doc * tokens).sum()),
        copies={doc_ids[i]: int(copies_per_doc[i]) for i in np.flatnonzero(copies_per_doc)},
    )


def _scale_meeting_budget(tokens: np.ndarray, weights: np.ndarray, budget: int, cap: float) -> float:
    """The f with sum(tokens * min(f * weights, cap)) = budget, solved exactly over the saturation points."""
    if budget <= 0 or len(tokens) == 0:
        return 0.0
    saturation = cap / weights
    order = np.argsort(saturation, kind="stable")
    n, w, s = tokens[order].astype(np.float64), weights[order], saturation[order]
    saturated_tokens = np.concatenate([[0.0], np.cumsum(n)])
    unsaturated_weight = np.concatenate([[0.0], np.cumsum(n * w)])
    unsaturated_weight = unsaturated_weight[-1] - unsaturated_weight
    # Total at f = s[k]: documents 0..k saturated, the rest at s[k] * weight.
    total_at = cap * saturated_tokens[1:] + s * unsaturated_weight[1:]
    k = int(np.searchsorted(total_at, budget))
    if k >= len(s):
        return float(s[-1])
    return float((budget - cap * saturated_tokens[k]) / unsaturated_weight[k])


def _unit_hash(seed: int, source: str, doc_id: str) -> float:
    """A uniform number in (0, 1] from (seed, source, doc id), the same on every machine and run."""
    return (xxhash.xxh3_64_intdigest(f"{source}\x00{doc_id}".encode(), seed=seed) + 1) / _HASH_SPAN


def shuffle_order(seed: int, entries: Iterable[MixEntry]) -> list[MixEntry]:
    """A seeded order of (source, doc_id, repetition) entries that does not depend on the input order."""

    def key(entry: MixEntry) -> tuple[int, MixEntry]:
        source, doc_id, repetition = entry
        return xxhash.xxh3_64_intdigest(f"{source}\x00{doc_id}\x00{repetition}".encode(), seed=seed), entry

    return sorted(entries, key=key)
