"""Pair-level precision and recall of a duplicate clustering against truth groups (as in the
near-duplicate evaluations of Broder 1997 and the FineWeb ablations): a pair of documents is a
predicted duplicate when they share a cluster, a true duplicate when they share a truth group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from itertools import combinations


def _pairs(assignment: Mapping[str, Hashable]) -> set[tuple[str, str]]:
    members: dict[Hashable, list[str]] = defaultdict(list)
    for doc, cluster in assignment.items():
        members[cluster].append(doc)
    return {pair for docs in members.values() if len(docs) > 1 for pair in combinations(sorted(docs), 2)}


def pair_precision_recall(
    truth: Mapping[str, Hashable], predicted: Mapping[str, Hashable]
) -> dict[str, float]:
    """Both mappings cover the same documents: doc id -> group (truth) or cluster (predicted)."""
    true_pairs, predicted_pairs = _pairs(truth), _pairs(predicted)
    hits = len(true_pairs & predicted_pairs)
    return {
        "precision": hits / len(predicted_pairs) if predicted_pairs else 1.0,
        "recall": hits / len(true_pairs) if true_pairs else 1.0,
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(predicted_pairs),
    }
