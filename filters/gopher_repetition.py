"""Gopher repetition rules (Rae et al. 2021, Appendix A, Table A1): duplicated lines, paragraphs and n-grams.

Definitions follow datatrove 0.10's GopherRepetitionFilter (character fractions over the whole text,
greedy non-overlapping counting of duplicated n-grams), computed on the shared word split.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from filters.base import Bound, TextView, bounded_score, first_violated

# The n-gram sizes Table A1 bounds; every size is always scored so thresholds can change later.
TOP_NGRAM_SIZES = (2, 3, 4)
DUP_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)

_PARAGRAPH_BREAK = re.compile(r"\n{2,}")


@dataclass(frozen=True)
class GopherRepetitionConfig:
    """Table A1 thresholds, as fractions of the document's characters (or of its lines and paragraphs)."""

    # Repetition is undefined on an empty text; Gopher's reference code drops it.
    min_chars: int | None = 1
    max_dup_paragraph_fraction: float | None = 0.3
    max_dup_paragraph_char_fraction: float | None = 0.2
    max_dup_line_fraction: float | None = 0.3
    max_dup_line_char_fraction: float | None = 0.2
    # n -> maximum share of characters in the most frequent n-gram (times its count); omit n to skip.
    max_top_ngram_char_fraction: dict[int, float] = field(default_factory=lambda: {2: 0.20, 3: 0.18, 4: 0.16})
    # n -> maximum share of characters in n-grams seen before (non-overlapping); omit n to skip.
    max_dup_ngram_char_fraction: dict[int, float] = field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )

    def __post_init__(self) -> None:
        for name, sizes in (
            ("max_top_ngram_char_fraction", TOP_NGRAM_SIZES),
            ("max_dup_ngram_char_fraction", DUP_NGRAM_SIZES),
        ):
            unknown = sorted(set(getattr(self, name)) - set(sizes))
            if unknown:
                raise ValueError(f"{name}: n-gram sizes {unknown} are not scored; choose from {list(sizes)}")


def duplicate_count_and_chars(items: Sequence[str]) -> tuple[int, int]:
    """How many items repeat an earlier one, and the characters in those repeats."""
    counts = Counter(items)
    return len(items) - len(counts), sum(len(item) * (n - 1) for item, n in counts.items() if n > 1)


def ngram_labels(word_labels: np.ndarray, n: int, shorter: np.ndarray) -> np.ndarray:
    """Label every n-gram by the position where that n-gram first occurs.

    Built from the (n-1)-gram labels `shorter` and the word labels, so equal n-grams get equal labels
    exactly (no hashing) and each size costs one sort.
    """
    count = max(len(word_labels) - n + 1, 0)
    pairs = shorter[:count] * (len(word_labels) + 1) + word_labels[n - 1 : n - 1 + count]
    _, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
    return first[inverse]


def top_ngram_chars(labels: np.ndarray, n: int, word_ends: np.ndarray) -> int:
    """Characters covered by the most frequent n-gram (words joined by spaces) times its count.

    Ties go to the n-gram that occurs first, as `Counter.most_common` does.
    """
    if not len(labels):
        return 0
    counts = np.bincount(labels)
    top = int(np.argmax(counts))  # labels are first positions, so the lowest maximal label occurs first
    return int(word_ends[top + n] - word_ends[top] + n - 1) * int(counts[top])


def duplicated_ngram_chars(labels: np.ndarray, n: int, word_ends: np.ndarray) -> int:
    """Characters (spaces excluded) in n-grams that repeat an earlier one, scanning left to right and
    jumping past each repeat, so overlapping repeats count once (Gopher's reference definition).

    Only positions whose n-gram occurred before can be repeats; the scan visits just those and records
    the first occurrences between them in bulk.
    """
    repeats = np.flatnonzero(labels != np.arange(len(labels))).tolist()
    if not repeats:
        return 0
    label_list = labels.tolist()
    seen: set[int] = set()
    repeated = idx = 0
    for pos in repeats:
        if pos < idx:
            continue  # inside the jump after a counted repeat: never visited
        seen.update(label_list[idx:pos])
        if label_list[pos] in seen:
            repeated += int(word_ends[pos + n] - word_ends[pos])
            idx = pos + n
        else:
            seen.add(label_list[pos])
            idx = pos + 1
    return repeated


def gopher_repetition_scores(view: TextView) -> dict[str, float]:
    text = view.text
    per_char = 1.0 / len(text) if text else 0.0
    paragraphs = _PARAGRAPH_BREAK.split(text.strip())
    dup_paragraphs, dup_paragraph_chars = duplicate_count_and_chars(paragraphs)
    # Whitespace-only lines count: pages padded with hundreds of "\xa0" lines are repetitive.
    lines = [line for line in view.lines if line]
    dup_lines, dup_line_chars = duplicate_count_and_chars(lines)
    scores = {
        "chars": float(len(text)),
        "dup_paragraph_fraction": dup_paragraphs / len(paragraphs),
        "dup_paragraph_char_fraction": dup_paragraph_chars * per_char,
        "dup_line_fraction": dup_lines / len(lines) if lines else 0.0,
        "dup_line_char_fraction": dup_line_chars * per_char,
    }
    words = view.words
    word_labels = view.word_labels
    word_ends = np.concatenate(([0], np.cumsum(np.fromiter(map(len, words), np.int64, len(words)))))
    labels = word_labels
    repeated = 1
    for n in range(2, DUP_NGRAM_SIZES[-1] + 1):
        if n in DUP_NGRAM_SIZES and not repeated:
            # No repeated (n-1)-gram means no repeated n-gram either.
            scores[f"dup_{n}gram_char_fraction"] = 0.0
            continue
        labels = ngram_labels(word_labels, n, labels)
        if n in TOP_NGRAM_SIZES:
            scores[f"top_{n}gram_char_fraction"] = top_ngram_chars(labels, n, word_ends) * per_char
        if n in DUP_NGRAM_SIZES:
            repeated = duplicated_ngram_chars(labels, n, word_ends)
            scores[f"dup_{n}gram_char_fraction"] = repeated * per_char
    return scores


_BOUNDS = (
    Bound("chars", "min_chars", "gopher_too_few_chars"),
    Bound("dup_paragraph_fraction", "max_dup_paragraph_fraction", "gopher_dup_paragraphs"),
    Bound("dup_paragraph_char_fraction", "max_dup_paragraph_char_fraction", "gopher_dup_paragraph_chars"),
    Bound("dup_line_fraction", "max_dup_line_fraction", "gopher_dup_lines"),
    Bound("dup_line_char_fraction", "max_dup_line_char_fraction", "gopher_dup_line_chars"),
)


class GopherRepetitionFilter:
    name: ClassVar[str] = "gopher_repetition_v1"
    Config = GopherRepetitionConfig

    def __init__(self, config: GopherRepetitionConfig):
        self.config = config

    def setup(self) -> None:
        """Nothing to load: the rules are plain arithmetic on the shared word split."""

    def score(self, view: TextView) -> dict[str, float]:
        return gopher_repetition_scores(view)

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        reason = first_violated(_BOUNDS, scores, self.config)
        if reason is not None:
            return reason
        for kind, limits in (
            ("top", self.config.max_top_ngram_char_fraction),
            ("dup", self.config.max_dup_ngram_char_fraction),
        ):
            for n in sorted(limits):
                if scores[f"{kind}_{n}gram_char_fraction"] > limits[n]:
                    return f"gopher_{kind}_{n}gram"
        return None

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        if reason.endswith("gram"):
            return scores[reason.removeprefix("gopher_") + "_char_fraction"]
        return bounded_score(_BOUNDS, scores, reason)
