"""Finding eval items in a training document: n-gram hits anchor an alignment, the alignment is verified.

A hit of an item's n-gram, or of an anchor (the first or last words of a short unit), gives an alignment
(document position minus item position). Along the alignments of one occurrence, each item word is
compared with the document word facing it, so a changed word costs one word of overlap instead of the n
n-grams that contain it (GPT-3 counted n-grams). The overlap is the fraction of the item's words found,
or of one of its standalone fields (a question without its answer, a passage without its question),
whichever is larger; items and fields shorter than n must be found whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from filters.decontaminate.index import DecontaminationIndex, window_keys
from filters.decontaminate.words import normalized_words, normalized_words_with_offsets


@dataclass(frozen=True, slots=True)
class Match:
    """An eval item found in a document: the matched span is `text[start:end]`; `score` is the overlap."""

    benchmark: str
    item_id: str
    score: float
    start: int
    end: int

    def to_dict(self) -> dict:
        return {
            "benchmark": self.benchmark,
            "item_id": self.item_id,
            "score": round(self.score, 4),
            "span": [self.start, self.end],
        }


def _tables(index: DecontaminationIndex) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]:
    """(window length, sorted keys, items, positions in item) of the n-gram and anchor postings."""
    return [
        (index.ngram, index.ngram_keys, index.ngram_items, index.ngram_positions),
        (index.min_item_words, index.anchor_keys, index.anchor_items, index.anchor_positions),
    ]


def _present(
    index: DecontaminationIndex, table: np.ndarray, keys: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The keys (and their window starts) that are in `table`: a Bloom test first, then a binary search."""
    if len(keys) == 0 or len(table) == 0:
        return keys[:0], starts[:0]
    maybe = index.may_contain(keys)
    keys, starts = keys[maybe], starts[maybe]
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    found = table[pos] == keys
    return keys[found], starts[found]


def _hits(index: DecontaminationIndex, word_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item, document position, item position) of every indexed key in the words."""
    tables = _tables(index)
    windows = window_keys(index.word_hashes[word_ids], word_ids != 0, [t[0] for t in tables])
    items, doc_pos, item_pos = [], [], []
    for length, table, table_items, table_positions in tables:
        keys, starts = _present(index, table, *windows[length])
        if len(keys) == 0:
            continue
        left = np.searchsorted(table, keys, "left")
        counts = np.searchsorted(table, keys, "right") - left
        # Expand each found key's posting range [left, left + count) into entry indices.
        entries = np.repeat(left - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
        items.append(table_items[entries])
        doc_pos.append(np.repeat(starts, counts))
        item_pos.append(table_positions[entries].astype(np.int64))
    if not items:
        empty = np.empty(0, np.int64)
        return empty, empty, empty
    return np.concatenate(items).astype(np.int64), np.concatenate(doc_pos), np.concatenate(item_pos)


def indexed_keys(index: DecontaminationIndex, text: str) -> np.ndarray:
    """The distinct index keys present in a text: what the training-frequency count of n-grams counts."""
    word_ids = index.word_ids(normalized_words(text))
    tables = _tables(index)
    windows = window_keys(index.word_hashes[word_ids], word_ids != 0, [t[0] for t in tables])
    found = [_present(index, table, *windows[length])[0] for length, table, _, _ in tables]
    return np.unique(np.concatenate(found))


def detect(index: DecontaminationIndex, text: str, min_overlap: float = 0.9) -> list[Match]:
    """Every occurrence of an eval item in `text` whose overlap is at least `min_overlap`, in text order."""
    items, _, _ = _hits(index, index.word_ids(normalized_words(text)))
    if len(items) == 0:
        return []
    # Offsets cost a second tokenization, paid only by documents with a hit.
    words, starts, ends = normalized_words_with_offsets(text)
    word_ids = index.word_ids(words)
    items, doc_pos, item_pos = _hits(index, word_ids)
    diagonals = doc_pos - item_pos
    order = np.lexsort((diagonals, items))
    items, diagonals = items[order], diagonals[order]
    matches = []
    for item in np.unique(items).tolist():
        lo, hi = np.searchsorted(items, item, "left"), np.searchsorted(items, item, "right")
        for occurrence in _occurrences(np.unique(diagonals[lo:hi]), _item_length(index, item)):
            found = _verify(index, item, occurrence, word_ids, min_overlap)
            if found is not None:
                score, first, last = found
                matches.append(
                    Match(
                        benchmark=index.benchmarks[index.item_benchmarks[item]],
                        item_id=index.item_ids[item],
                        score=score,
                        start=starts[first],
                        end=ends[last],
                    )
                )
    return sorted(matches, key=lambda m: (m.start, m.end, m.benchmark, m.item_id))


def _item_length(index: DecontaminationIndex, item: int) -> int:
    return int(index.item_offsets[item + 1] - index.item_offsets[item])


def _occurrences(diagonals: np.ndarray, item_length: int) -> list[np.ndarray]:
    """Alignments of one item grouped by occurrence: a gap over half the item starts another copy."""
    breaks = np.flatnonzero(np.diff(diagonals) > max(1, item_length // 2)) + 1
    return np.split(diagonals, breaks)


def _verify(
    index: DecontaminationIndex, item: int, diagonals: np.ndarray, word_ids: np.ndarray, min_overlap: float
) -> tuple[float, int, int] | None:
    """(overlap, first and last matched document word) of one occurrence, or None below `min_overlap`."""
    item_words = index.item_words[index.item_offsets[item] : index.item_offsets[item + 1]]
    length = len(item_words)
    found = np.zeros(length, bool)
    doc_first, doc_last = len(word_ids), -1
    for d in diagonals.tolist():
        lo, hi = max(0, -d), min(length, len(word_ids) - d)
        if lo >= hi:
            continue
        equal = word_ids[lo + d : hi + d] == item_words[lo:hi]
        found[lo:hi] |= equal
        at = np.flatnonzero(equal)
        if len(at):
            doc_first = min(doc_first, int(at[0]) + lo + d)
            doc_last = max(doc_last, int(at[-1]) + lo + d)
    units = [
        (0, length),
        *index.field_bounds[index.field_offsets[item] : index.field_offsets[item + 1]].tolist(),
    ]
    score = max(_overlap(found[start:end], index.ngram) for start, end in units)
    if score < min_overlap:
        return None
    return score, doc_first, doc_last


def _overlap(found: np.ndarray, ngram: int) -> float:
    """Fraction of a unit's words found; a unit shorter than n counts only when found whole."""
    if len(found) < ngram:
        return 1.0 if found.all() else 0.0
    return float(found.mean())
