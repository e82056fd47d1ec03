"""Pair-level precision and recall of a duplicate clustering against true duplicate pairs (as in the
near-duplicate evaluations of Broder 1997 and the FineWeb ablations): a pair of documents is a
predicted duplicate when they share a cluster. Truth is given as pairs, not groups, so that related
texts linked only through a third (A ~ B ~ C) are not counted as duplicates of each other."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Hashable, Mapping
from itertools import combinations


def clustered_pairs(assignment: Mapping[str, Hashable]) -> set[tuple[str, str]]:
    """Sorted pairs of documents sharing a cluster: doc id -> cluster."""
    members: dict[Hashable, list[str]] = defaultdict(list)
    for doc, cluster in assignment.items():
        members[cluster].append(doc)
    return {pair for docs in members.values() if len(docs) > 1 for pair in combinations(sorted(docs), 2)}


def pair_precision_recall(
    true_pairs: set[tuple[str, str]], predicted: Mapping[str, Hashable]
) -> dict[str, float]:
    """`true_pairs` sorted (a, b) with a < b; `predicted` doc id -> cluster for every document."""
    predicted_pairs = clustered_pairs(predicted)
    hits = len(true_pairs & predicted_pairs)
    return {
        "precision": hits / len(predicted_pairs) if predicted_pairs else 1.0,
        "recall": hits / len(true_pairs) if true_pairs else 1.0,
        "true_pairs": len(true_pairs),
        "predicted_pairs": len(predicted_pairs),
    }
