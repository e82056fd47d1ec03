"""Finding eval items in a training document: n-gram hits anchor an alignment, the alignment is verified.

A hit of an item's n-gram, or of an anchor (the first or last words of a short unit), gives an alignment
(document position minus item position). Along the alignments of one occurrence, each item word is
compared with the document word facing it, so a changed word costs one word of overlap instead of the n
n-grams that contain it (GPT-3 counted n-grams); and the item's words joined without separators are
compared with the document's, character by character, so punctuation that splits or merges words
(`Earth's` / `Earths`, `f(a,b,n)` / `fabn`) neither costs overlap nor moves the rest of the item onto
another alignment. The overlap is the fraction of the item's words found, or of one of its standalone
fields (a question without its answer, a passage without its question), whichever is larger; items and
fields shorter than n must be found whole.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from filters.decontaminate.index import JOINED_FORM, DecontaminationIndex, filter_may_contain
from filters.decontaminate.keys import window_keys, word_keys
from filters.decontaminate.words import normalized_words, normalized_words_with_offsets, word_spans_of_texts


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


def _tables(index: DecontaminationIndex) -> list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(window length, Bloom filter, sorted keys, items, positions in item) of the n-gram and anchor
    postings."""
    return [
        (index.ngram, index.key_filter, index.ngram_keys, index.ngram_items, index.ngram_positions),
        (
            index.anchor_words,
            index.anchor_filter,
            index.anchor_keys,
            index.anchor_items,
            index.anchor_positions,
        ),
    ]


def _present(
    bit_filter: np.ndarray, table: np.ndarray, keys: np.ndarray, starts: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The keys (and their window starts) that are in `table`: a Bloom test first, then a binary search."""
    if len(keys) == 0 or len(table) == 0:
        return keys[:0], starts[:0]
    maybe = filter_may_contain(bit_filter, keys)
    keys, starts = keys[maybe], starts[maybe]
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    found = table[pos] == keys
    return keys[found], starts[found]


def _hits(index: DecontaminationIndex, word_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(item, document position, item position) of every indexed key in the words."""
    tables = _tables(index)
    windows = window_keys(index.word_hashes[word_ids], word_ids != 0, [t[0] for t in tables])
    items, doc_pos, item_pos = [], [], []
    for length, bit_filter, table, table_items, table_positions in tables:
        keys, starts = _present(bit_filter, table, *windows[length])
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


# Texts screened together hold at most this many characters (a longer text is screened alone): the key
# tables of keys.py grow with the characters hashed at once, and are kept for reuse.
_SCREEN_CHARS = 1 << 19


def may_contain_items(index: DecontaminationIndex, texts: list[str]) -> np.ndarray:
    """For each text, False when no window of it has an indexed key, so it holds no eval item: decided from
    keys computed straight from the code points of many texts at once, with no word list or vocabulary
    lookup. A window with a word outside the vocabulary gets a key the index lacks (but for a 2^-64 chance,
    which only sends the text on to the exact path), so every text this passes holds no key the exact
    path would find."""
    tables = _tables(index)
    flagged = np.zeros(len(texts), bool)
    for first, stop in _screened_together(list(map(len, texts))):
        code_points, starts, ends, word_text = word_spans_of_texts(texts[first:stop])
        windows = window_keys(word_keys(code_points, starts, ends), None, [t[0] for t in tables])
        for length, bit_filter, table, _, _ in tables:
            window_starts = _present(bit_filter, table, *windows[length])[1]
            # A window across two texts belongs to neither.
            text, last = word_text[window_starts], word_text[window_starts + length - 1]
            flagged[first + text[text == last]] = True
    return flagged


def _screened_together(lengths: list[int]) -> list[tuple[int, int]]:
    """Consecutive runs [first, stop) of texts holding at most `_SCREEN_CHARS` characters, or one text."""
    runs, first, chars = [], 0, 0
    for i, n in enumerate(lengths):
        if i > first and chars + n > _SCREEN_CHARS:
            runs.append((first, i))
            first, chars = i, 0
        chars += n
    return [*runs, (first, len(lengths))] if lengths else runs


def indexed_keys(index: DecontaminationIndex, texts: list[str], screen: np.ndarray | None = None) -> list[np.ndarray]:
    """The distinct index keys present in each text: what the training-frequency count of n-grams counts.
    `screen`: the texts' `may_contain_items`, when it is known already."""
    if screen is None:
        screen = may_contain_items(index, texts)
    return [_indexed_keys(index, text) if may else np.empty(0, np.uint64) for text, may in zip(texts, screen)]


def _indexed_keys(index: DecontaminationIndex, text: str) -> np.ndarray:
    word_ids = index.word_ids(normalized_words(text))
    tables = _tables(index)
    windows = window_keys(index.word_hashes[word_ids], word_ids != 0, [t[0] for t in tables])
    found = [_present(bit_filter, table, *windows[length])[0] for length, bit_filter, table, _, _ in tables]
    return np.unique(np.concatenate(found))


@dataclass(frozen=True, slots=True)
class _Words:
    """A document's word ids, and its words joined without separators as code points, with where each word
    starts among them (plus the end): words split or merged by punctuation keep the same characters."""

    ids: np.ndarray
    chars: np.ndarray
    char_starts: np.ndarray

    @classmethod
    def of(cls, index: DecontaminationIndex, words: list[str]) -> _Words:
        return cls(index.word_ids(words), _code_points(words), _char_starts(list(map(len, words))))


def _code_points(words: list[str]) -> np.ndarray:
    return np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), np.uint32)


def _char_starts(lengths: list[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(lengths, dtype=np.int64)])


def detect(index: DecontaminationIndex, text: str, min_overlap: float = 0.9) -> list[Match]:
    """Every occurrence of an eval item in `text` whose overlap is at least `min_overlap`, in text order."""
    return detect_all(index, [text], min_overlap)[0]


def detect_all(
    index: DecontaminationIndex, texts: list[str], min_overlap: float = 0.9, screen: np.ndarray | None = None
) -> list[list[Match]]:
    """`detect` of each text, the texts screened together. `screen`: the texts' `may_contain_items` when it
    is known already, by this index or by one it was cut from (`without_keys`): a text that index passes
    holds no key of this one either, and a text it flags without a key here gets no match."""
    if screen is None:
        screen = may_contain_items(index, texts)
    return [_detect(index, text, min_overlap) if may else [] for text, may in zip(texts, screen)]


def _detect(index: DecontaminationIndex, text: str, min_overlap: float) -> list[Match]:
    # Offsets cost a second tokenization, paid only by documents with a hit.
    words, starts, ends = normalized_words_with_offsets(text)
    doc = _Words.of(index, words)
    items, doc_pos, item_pos = _hits(index, doc.ids)
    joined = item_pos >= JOINED_FORM
    item_pos = item_pos & (JOINED_FORM - 1)
    order = np.lexsort((doc_pos - item_pos, items))
    items, doc_pos, item_pos, joined = items[order], doc_pos[order], item_pos[order], joined[order]
    matches = []
    for item in np.unique(items).tolist():
        lo, hi = np.searchsorted(items, item, "left"), np.searchsorted(items, item, "right")
        hits = doc_pos[lo:hi], item_pos[lo:hi], joined[lo:hi]
        for occurrence in _occurrences(*hits, _item_length(index, item)):
            found = _verify(index, item, *occurrence, doc, min_overlap)
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


def _occurrences(
    doc_pos: np.ndarray, item_pos: np.ndarray, joined: np.ndarray, item_length: int
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The hits of one item (sorted by alignment) grouped by occurrence: an alignment gap over half the
    item starts another copy."""
    breaks = np.flatnonzero(np.diff(doc_pos - item_pos) > max(1, item_length // 2)) + 1
    return list(zip(*(np.split(a, breaks) for a in (doc_pos, item_pos, joined))))


def _verify(
    index: DecontaminationIndex,
    item: int,
    doc_pos: np.ndarray,
    item_pos: np.ndarray,
    joined: np.ndarray,
    doc: _Words,
    min_overlap: float,
) -> tuple[float, int, int] | None:
    """(overlap, first and last matched document word) of one occurrence, or None below `min_overlap`.

    Each hit gives two alignments, checked along the whole item: by words (a changed word costs one word)
    and by characters of the words joined (a word split or merged by punctuation costs nothing and does not
    shift the rest of the item, as it shifts the word alignment). A hit of the item's form without
    punctuation has only the second: its word position counts the item's words, not the document's."""
    item_words = index.item_words[index.item_offsets[item] : index.item_offsets[item + 1]]
    length = len(item_words)
    found = np.zeros(length, bool)
    matched_doc_words = []
    word_diagonals = doc_pos[~joined] - item_pos[~joined]
    for d in np.unique(word_diagonals).tolist():
        lo, hi = max(0, -d), min(length, len(doc.ids) - d)
        equal = np.zeros(length, bool)
        equal[lo:hi] = doc.ids[lo + d : hi + d] == item_words[lo:hi]
        equal = _extended(equal, item_pos[~joined][word_diagonals == d])
        found |= equal
        matched_doc_words.append(np.flatnonzero(equal) + d)
    item_chars = _code_points([index.words_by_id[w] for w in item_words.tolist()])
    item_starts = _char_starts(index.word_lengths[item_words].tolist())
    char_diagonals = doc.char_starts[doc_pos] - item_starts[item_pos]
    for c in np.unique(char_diagonals).tolist():
        lo, hi = max(0, -c), min(len(item_chars), len(doc.chars) - c)
        equal = np.zeros(len(item_chars), bool)
        equal[lo:hi] = doc.chars[lo + c : hi + c] == item_chars[lo:hi]
        # A word is found when every one of its characters is.
        whole = _extended(~np.logical_or.reduceat(~equal, item_starts[:-1]), item_pos[char_diagonals == c])
        found |= whole
        bounds = np.concatenate([item_starts[:-1][whole], item_starts[1:][whole] - 1]) + c
        matched_doc_words.append(np.searchsorted(doc.char_starts, bounds, "right") - 1)
    units = [
        (0, length),
        *index.field_bounds[index.field_offsets[item] : index.field_offsets[item + 1]].tolist(),
    ]
    score = max(_overlap(found[start:end], index.ngram) for start, end in units)
    if score < min_overlap:
        return None
    matched = np.concatenate(matched_doc_words)
    return score, int(matched.min()), int(matched.max())


def _extended(equal: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The item words matched along one alignment that are reached from its hits (`seeds`, item positions)
    without crossing two mismatched words in a row: one changed word does not end the extension, while a
    word that matches by chance further along, past where the copy ends, is not counted."""
    stop = np.zeros(len(equal), bool)
    stop[1:] = ~equal[1:] & ~equal[:-1]
    stretch = np.cumsum(stop)
    reached = np.zeros(stretch[-1] + 1, bool)
    reached[stretch[seeds]] = True
    return equal & reached[stretch]


def _overlap(found: np.ndarray, ngram: int) -> float:
    """Fraction of a unit's words found; a unit shorter than n counts only when found whole."""
    if len(found) < ngram:
        return 1.0 if found.all() else 0.0
    return float(found.mean())
