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


class BatchNgrams:
    """The n-gram labels of several documents' words at once: each n-gram is labelled by the position
    (in the documents laid end to end) where that n-gram first occurs in its own document.

    Built size by size from the (n-1)-gram labels and the word labels, so equal n-grams get equal labels
    exactly (no hashing). Only an n-gram whose (n-1)-gram prefix occurs twice in its document can repeat,
    so each size sorts just those; every other n-gram, and one running past its document's end, is
    labelled by its own position. One numpy pass per size serves the whole batch.
    """

    def __init__(self, word_labels: Sequence[np.ndarray]):
        lengths = np.fromiter(map(len, word_labels), np.int64, len(word_labels))
        self.lengths = lengths
        self.starts = np.cumsum(lengths) - lengths
        self._total = int(lengths.sum())
        # Word labels in the batch's positions: a document's labels never equal another's.
        self._words = np.concatenate([*word_labels, np.zeros(0, np.int64)]) + np.repeat(self.starts, lengths)
        self._ends = np.repeat(self.starts + lengths, lengths)
        self._positions = np.arange(self._total)
        self.labels = self._words  # n = 1

    def grow(self, n: int) -> np.ndarray:
        """Labels of the n-grams, from those of the (n-1)-grams in `labels` (call with n = 2, 3, ...)."""
        count = max(self._total - n + 1, 0)
        shorter = self.labels[:count]
        positions = self._positions[:count]
        labels = positions.copy()
        repeats = np.flatnonzero((shorter != positions) & (positions + n <= self._ends[:count]))
        if len(repeats):
            prefix_repeated = np.zeros(count, bool)
            prefix_repeated[repeats] = True
            prefix_repeated[shorter[repeats]] = True  # the first occurrence of each repeated prefix
            candidates = np.flatnonzero(prefix_repeated)
            pairs = shorter[candidates] * (self._total + 1) + self._words[candidates + n - 1]
            _, first, inverse = np.unique(pairs, return_index=True, return_inverse=True)
            labels[candidates] = candidates[first[inverse]]
        self.labels = labels
        return labels

    def top_ngram_chars(self, n: int, word_ends: np.ndarray) -> list[int]:
        """Per document, the characters covered by its most frequent n-gram from the last `grow(n)` (words
        joined by spaces) times its count; 0 without an n-gram. `word_ends` are the batch's (see
        `word_ends`). Ties go to the n-gram that occurs first, as `Counter.most_common` does.

        Counted for the whole batch at once: a label is a first position, so each document's most
        frequent n-gram is its lowest position holding its highest count.
        """
        chars = np.zeros(len(self.lengths), np.int64)
        docs = np.flatnonzero(self.lengths >= n)
        if not len(docs):
            return chars.tolist()
        count = len(self.labels)
        inside = self._positions[:count] + n <= self._ends[:count]
        counts = np.bincount(self.labels[inside], minlength=count)
        # One segment per document with an n-gram, running on over the empty counts of any shorter
        # documents after it.
        starts = self.starts[docs]
        best = np.maximum.reduceat(counts, starts)
        at_best = np.flatnonzero(counts == np.repeat(best, np.diff(starts, append=count)))
        _, first = np.unique(np.searchsorted(starts, at_best, side="right"), return_index=True)
        top = at_best[first]
        chars[docs] = (word_ends[top + n] - word_ends[top] + n - 1) * best
        return chars.tolist()

    def of_document(self, doc: int, n: int) -> np.ndarray:
        """Document `doc`'s n-gram labels from the last `grow(n)`, as positions in that document."""
        start = int(self.starts[doc])
        return self.labels[start : start + max(int(self.lengths[doc]) - n + 1, 0)] - start


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


def gopher_repetition_scores(views: Sequence[TextView]) -> list[dict[str, float]]:
    """Each document's repetition scores; the n-gram labels of the whole batch are built together."""
    batch_scores = []
    for view in views:
        text = view.text
        paragraphs = _PARAGRAPH_BREAK.split(text.strip())
        dup_paragraphs, dup_paragraph_chars = duplicate_count_and_chars(paragraphs)
        # Whitespace-only lines count: pages padded with hundreds of "\xa0" lines are repetitive.
        lines = [line for line in view.lines if line]
        dup_lines, dup_line_chars = duplicate_count_and_chars(lines)
        per_char = _per_char(text)
        batch_scores.append(
            {
                "chars": float(len(text)),
                "dup_paragraph_fraction": dup_paragraphs / len(paragraphs),
                "dup_paragraph_char_fraction": dup_paragraph_chars * per_char,
                "dup_line_fraction": dup_lines / len(lines) if lines else 0.0,
                "dup_line_char_fraction": dup_line_chars * per_char,
            }
        )
    ngrams = BatchNgrams([view.word_labels for view in views])
    ends = word_ends(views)
    doc_ends = ngrams.starts + ngrams.lengths
    per_char = [_per_char(view.text) for view in views]
    for n in range(2, DUP_NGRAM_SIZES[-1] + 1):
        labels = ngrams.grow(n)
        if n in TOP_NGRAM_SIZES:
            for scores, top, doc_per_char in zip(batch_scores, ngrams.top_ngram_chars(n, ends), per_char):
                scores[f"top_{n}gram_char_fraction"] = top * doc_per_char
        if n in DUP_NGRAM_SIZES:
            for scores in batch_scores:
                scores[f"dup_{n}gram_char_fraction"] = 0.0
            # Only documents with an n-gram seen before in them have anything duplicated.
            repeated = np.flatnonzero(labels != np.arange(len(labels)))
            for doc in sorted(set(np.searchsorted(doc_ends, repeated, side="right").tolist())):
                dup = duplicated_ngram_chars(ngrams.of_document(doc, n), n, ends[ngrams.starts[doc] :])
                batch_scores[doc][f"dup_{n}gram_char_fraction"] = dup * per_char[doc]
    return batch_scores


def word_ends(views: Sequence[TextView]) -> np.ndarray:
    """Character offsets of the ends of the batch's words laid end to end, so the
    characters of words [i, j) are `word_ends[j] - word_ends[i]`."""
    lengths = np.concatenate([*(view.word_lengths for view in views), np.zeros(0, np.int64)])
    return np.concatenate(([0], np.cumsum(lengths)))


def _per_char(text: str) -> float:
    return 1.0 / len(text) if text else 0.0


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
        return self.score_batch([view])[0]

    def score_batch(self, views: Sequence[TextView]) -> list[dict[str, float]]:
        return gopher_repetition_scores(views)

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
