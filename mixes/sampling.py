"""Token budgets per source and the documents that fill them (Dolma / OLMo mixes): largest-remainder
apportionment, seeded per-document selection with repetition (FineWeb-2 rehydration by cluster size as an
option), and a seeded global order. Every choice is a digest of (seed, source, doc id), never arrival order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from fractions import Fraction
from typing import Any, NamedTuple

import numpy as np
import xxhash

from curation.errors import InfeasibleMixError

# (doc_id, n_tokens) or (doc_id, n_tokens, cluster_size)
DocTokens = tuple[str, int] | tuple[str, int, int]
# (source, doc_id, repetition_index)

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
    available_means: str = "available",
) -> None:
    """Refuse, from token counts alone, every source asked for more than its documents times max_repetition.
    `available_means` says what the counts are when they are a bound rather than the tokens kept."""
    problems = []
    for source in sorted(budget_tokens):
        most = math.floor(available_tokens.get(source, 0) * max_repetition[source])
        if budget_tokens[source] > most:
            problems.append(
                f"source {source!r} is short by {budget_tokens[source] - most:,} tokens: "
                f"{budget_tokens[source]:,} requested, {available_tokens.get(source, 0):,} {available_means} "
                f"x max_repetition {max_repetition[source]:g} = {most:,}"
            )
    if problems:
        raise InfeasibleMixError("; ".join(problems))


def document_weight(cluster_size: int, weight_by_cluster_size: bool) -> float:
    return float(max(cluster_size, 1)) if weight_by_cluster_size else 1.0


def expected_copies(scale: float, weight: float, max_repetition: float) -> tuple[int, float]:
    """A document's whole copies and the fraction of one more it may get: min(scale * weight, max_repetition)."""
    expected = min(scale * weight, max_repetition)
    whole = math.floor(expected)
    return whole, expected - whole


class Candidate(NamedTuple):
    """A document that may get one more copy, ordered by its sampling key (ties by id), with whatever the
    caller needs to place that copy."""

    key: float
    doc_id: str
    n_tokens: int
    payload: Any = None


def candidate_key(seed: int, source: str, doc_id: str, fraction: float) -> float:
    """Hash / fraction: sequential Poisson sampling takes the smallest keys first."""
    return _unit_hash(seed, source, doc_id) / fraction


def take_fractional_copies(candidates: Iterable[Candidate], gap: int) -> Iterator[Candidate]:
    """The candidates, in key order, that get their extra copy to close `gap` tokens, read as a stream.

    First fit: a document that would overshoot is skipped, a later smaller one may still fit. Documents are
    never split, so a gap smaller than every remaining document is closed by the one that lands nearest the
    budget, when overshooting by it misses by less than stopping short does: every skipped document is
    longer than the gap left, so that is the shortest one skipped (ties to the smaller id)."""
    shortest_skipped = None
    for candidate in candidates:
        if gap <= 0:
            return
        if candidate.n_tokens <= gap:
            gap -= candidate.n_tokens
            yield candidate
        elif shortest_skipped is None or (candidate.n_tokens, candidate.doc_id) < (
            shortest_skipped.n_tokens,
            shortest_skipped.doc_id,
        ):
            shortest_skipped = candidate
    if gap > 0 and shortest_skipped is not None and shortest_skipped.n_tokens < 2 * gap:
        yield shortest_skipped


def scale_meeting_budget(groups: Mapping[float, int], budget: int, cap: float) -> float:
    """The f with sum(tokens * min(f * weight, cap)) = budget, from the source's tokens per weight, solved
    exactly over the saturation points (the weights' cap / weight, smallest first)."""
    if budget <= 0 or not groups:
        return 0.0
    weights = sorted(groups, key=lambda w: cap / w)
    n = np.array([groups[w] for w in weights], dtype=np.float64)
    w = np.array(weights, dtype=np.float64)
    s = cap / w
    saturated_tokens = np.concatenate([[0.0], np.cumsum(n)])
    unsaturated_weight = np.concatenate([[0.0], np.cumsum(n * w)])
    unsaturated_weight = unsaturated_weight[-1] - unsaturated_weight
    # Total at f = s[k]: weights 0..k saturated, the rest at s[k] * weight.
    total_at = cap * saturated_tokens[1:] + s * unsaturated_weight[1:]
    k = int(np.searchsorted(total_at, budget))
    if k >= len(s):
        return float(s[-1])
    return float((budget - cap * saturated_tokens[k]) / unsaturated_weight[k])


def _unit_hash(seed: int, source: str, doc_id: str) -> float:
    """A uniform number in (0, 1] from (seed, source, doc id), the same on every machine and run."""
    return (xxhash.xxh3_64_intdigest(f"{source}\x00{doc_id}".encode(), seed=seed) + 1) / _HASH_SPAN


def order_key(seed: int, source: str, doc_id: str, repetition: int) -> tuple[int, str, str, int]:
    """Where a document copy stands in the mix: its seeded hash, ties broken by the copy itself."""
    return (
        xxhash.xxh3_64_intdigest(f"{source}\x00{doc_id}\x00{repetition}".encode(), seed=seed),
        source,
        doc_id,
        repetition,
    )
