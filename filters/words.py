"""The word split every word-counting filter shares (Gopher quality and repetition, FineWeb), and a
worker's table that numbers each distinct chunk and word once.

A text's words are looked up as whole chunks (the text split at whitespace), one dict lookup each in one C
loop, and come out as an array of word ids: equal words, equal ids. What the filters need of each word (its
length, its classes) is then an array indexed by id, computed once per distinct word, so no filter walks a
document's words in Python.
"""

from __future__ import annotations

import re
import string
from collections import defaultdict
from collections.abc import Callable, Hashable
from itertools import chain, count, filterfalse, islice

import numpy as np
import regex

# Words are drawn where spaCy's English tokenizer (datatrove's `split_into_words`, which the Gopher and
# FineWeb papers' reference code uses) draws them on web text, at a fraction of its cost. Text splits at
# whitespace into chunks; a chunk then sheds leading and trailing punctuation as tokens, keeps inner
# punctuation ("9/11", "@xcite", "e.g.", "U.S."), splits contractions ("do" "n't", "it" "'s"), a hyphen,
# colon, slash or comma before a letter ("well" "-" "known"), ellipses, and "." between a lowercase and
# an uppercase letter. A trailing "." stays on common abbreviations ("Mr.", "p.").
ABBREVIATIONS = (
    "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Mt", "Jr", "Sr", "Gen", "Gov", "Sen", "Rep", "Rev", "Adm",
    "Inc", "Ltd", "Co", "co", "Corp", "Bros", "vs",
    "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
)  # fmt: skip
_EDGE = r"\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Sc}\"'`´,;:!?¿¡#*&_<>§%=—–~·。？！，、；：～…"
_TRAILING = rf"(?=[{_EDGE}.]*$)"
_CONTRACTION = rf"(?:[nN]['’][tT]|['’](?:[sSmMdD]|ll|LL|re|RE|ve|VE)){_TRAILING}"
_INFIX = r"(?<=[\p{L}\d])[-:<>=/,](?=\p{L})|(?<=\d)[-+*^](?=\d)|(?<=\p{Ll})\.(?=\p{Lu})"
_INNER_BREAK = rf"\.{{2,}}|…|{_INFIX}|(?<=\w){_CONTRACTION}"
_CHUNK_TOKEN = regex.compile(
    rf"(?<![^{_EDGE}])(?:{'|'.join(ABBREVIATIONS)}|[a-zäöü]|\p{{Lu}}|\p{{L}}(?:\.\p{{L}})+)\.{_TRAILING}"
    rf"|\w+(?![nN]['’][tT]){_TRAILING}"
    rf"|\.{{2,}}|…+|{_INFIX}"
    rf"|(?<=\w){_CONTRACTION}"
    rf"|[^{_EDGE}](?:(?:(?!{_INNER_BREAK}).)*(?!{_INNER_BREAK})[^{_EDGE}.])?"
    rf"|.",
    regex.V1,
)


# The commonest chunks that are not plain words, tokenized as `_CHUNK_TOKEN` does at a fraction of its
# cost: an ASCII word, a number with decimal points or thousands commas, words joined by hyphens ("well"
# "-" "known") or a word and its contraction ("it" "'s", "do" "n't"), between opening quotes or brackets
# and closing marks, each mark standing alone, as does a full stop (never two in a row). A full stop right
# after a plain word stays on it when the word is an abbreviation or a single letter.
_SIMPLE_CHUNK = re.compile(
    r"""([(\["'“‘]*)(?:([A-Za-z0-9]+)|(\d+(?:[.,]\d+)+|[A-Za-z]+(?:-[A-Za-z]+)+)"""
    r"|([A-Za-z]+?)([nN]['’][tT]|['’](?:[sSmMdD]|ll|LL|re|RE|ve|VE)))"
    r"""(\.?)((?:[,;:!?)\]"'”’%]\.?)*)"""
)
_KEEPS_FULL_STOP = frozenset(ABBREVIATIONS) | frozenset(string.ascii_letters)
_HYPHEN = re.compile("(-)")


def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    simple = _SIMPLE_CHUNK.fullmatch(chunk)
    if simple is None:
        return tuple(_CHUNK_TOKEN.findall(chunk))
    lead, word, joined, stem, contraction, full_stop, trail = simple.groups()
    if word is None:
        words = (stem, contraction) if joined is None else _HYPHEN.split(joined)
        return (*lead, *words, *full_stop, *trail)
    if full_stop and word in _KEEPS_FULL_STOP:
        word, full_stop = word + full_stop, ""
    return (*lead, word, *full_stop, *trail)


# Distinct chunks a worker keeps; past this the table starts afresh (between two batches), so a long-lived
# worker's memory stays bounded without changing any result: only equality within one text matters.
_MAX_CHUNKS = 1_000_000
_NEVER = np.iinfo(np.int64).max
_UNSPLIT = -1


def newest_keys(index: dict[str, int], base: int) -> list[str]:
    """The keys an insertion-ordered index gained since it held `base` of them, in order."""
    return list(islice(reversed(index), len(index) - base))[::-1]


def run_positions(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The positions of the runs [first[i], first[i] + counts[i]), one run after another."""
    ends = np.cumsum(counts)
    total = int(ends[-1]) if len(ends) else 0
    return np.repeat(first - (ends - counts), counts) + np.arange(total)


class _GrowingArray:
    """An int64 array appended to in place, its room doubled when full (amortized O(1) per item)."""

    __slots__ = ("data", "size")

    def __init__(self) -> None:
        self.data = np.zeros(1 << 10, np.int64)
        self.size = 0

    def extend(self, values: np.ndarray) -> None:
        end = self.size + len(values)
        if end > len(self.data):
            self.data = np.concatenate(
                (self.data[: self.size], np.zeros(max(end, 2 * len(self.data)) - self.size, np.int64))
            )
        self.data[self.size : end] = values
        self.size = end


class WordTable:
    """Each distinct chunk's id, and its word ids; each distinct word's length and facts; for one worker.

    The chunk ids are fastText's word index too (`filters.fasttext_hs`), so a text is looked up once for
    language ID and the word split both. Ids stay valid until the table starts afresh (`generation`
    changes), which only `start_afresh_if_full` does, between batches."""

    def __init__(self, max_chunks: int = _MAX_CHUNKS):
        self.max_chunks = max_chunks
        self.generation = 0
        self._start_afresh()

    def start_afresh_if_full(self) -> None:
        if len(self._chunk_index) > self.max_chunks:
            self._start_afresh()

    def _start_afresh(self) -> None:
        self.generation += 1
        # Chunk (word) -> id in order of first sight: one met for the first time gets the next id (in C).
        self._chunk_index: defaultdict[str, int] = defaultdict(count().__next__)
        self._word_index: defaultdict[str, int] = defaultdict(count().__next__)
        self.chunks: list[str] = []  # id -> chunk, brought up to date by `chunks_from`
        self.words: list[str] = []  # id -> word
        # A chunk's word ids are `_chunk_words[_first[c] : _first[c] + _count[c]]` (`_UNSPLIT` until asked).
        self._first = _GrowingArray()
        self._count = _GrowingArray()
        self._chunk_words = _GrowingArray()
        self._lengths = _GrowingArray()
        self._facts: dict[Hashable, _GrowingArray] = {}
        self._first_seen = np.zeros(0, np.int64)  # all `_NEVER` between calls of `first_positions`

    def chunk_ids(self, chunks: list[str]) -> np.ndarray:
        """The ids of `chunks` (any strings without whitespace), new ones numbered on the spot; a chunk is
        split into words only when a filter first asks for its words."""
        return np.fromiter(map(self._chunk_index.__getitem__, chunks), np.int64, len(chunks))

    def chunks_from(self, start: int) -> list[str]:
        """The chunks numbered `start` and after, in order."""
        self._list_new_chunks()
        return self.chunks[start:]

    def _list_new_chunks(self) -> None:
        if len(self._chunk_index) > len(self.chunks):
            self.chunks.extend(newest_keys(self._chunk_index, len(self.chunks)))

    def word_ids(self, chunk_ids: np.ndarray) -> np.ndarray:
        """The ids of the words of the chunks `chunk_ids`, in order."""
        counts = self._split_counts(chunk_ids)
        return self._chunk_words.data[run_positions(self._first.data[chunk_ids], counts)]

    def word_count(self, chunks: list[str]) -> int:
        """`len(self.word_ids(self.chunk_ids(chunks)))`, looking up only the chunks that are not one word."""
        others = self.chunk_ids(list(filterfalse(str.isalnum, chunks)))
        return len(chunks) + int(self._split_counts(others).sum()) - len(others)

    def word_lengths(self, word_ids: np.ndarray) -> np.ndarray:
        """Characters of each word."""
        return self._lengths.data[word_ids]

    def first_positions(self, word_ids: np.ndarray) -> np.ndarray:
        """Per word of a text, the position where that word first occurs in it."""
        if len(self._first_seen) < len(self.words):
            self._first_seen = np.full(2 * len(self.words), _NEVER, np.int64)
        np.minimum.at(self._first_seen, word_ids, np.arange(len(word_ids)))
        positions = self._first_seen[word_ids]
        self._first_seen[word_ids] = _NEVER
        return positions

    def facts(self, key: Hashable, fact: Callable[[str], int]) -> np.ndarray:
        """`fact(word)` of every word so far, indexed by id and computed once per word; `key` names it."""
        column = self._facts.setdefault(key, _GrowingArray())
        if column.size < len(self.words):
            new = self.words[column.size :]
            column.extend(np.fromiter(map(fact, new), np.int64, len(new)))
        return column.data

    def _split_counts(self, chunk_ids: np.ndarray) -> np.ndarray:
        """How many words each chunk has, splitting the chunks never split before: only chunks whose
        words are asked for (language ID looks up the chunks of texts no later filter reads)."""
        new_chunks = len(self._chunk_index) - self._count.size
        if new_chunks:
            self._first.extend(np.zeros(new_chunks, np.int64))
            self._count.extend(np.full(new_chunks, _UNSPLIT, np.int64))
        counts = self._count.data[chunk_ids]
        unsplit = counts == _UNSPLIT
        if unsplit.any():
            self._split(np.unique(chunk_ids[unsplit]))
            counts = self._count.data[chunk_ids]
        return counts

    def _split(self, chunk_ids: np.ndarray) -> None:
        self._list_new_chunks()
        chunks = self.chunks
        # A chunk of letters and digits only is one word.
        tokens = [
            (chunk,) if chunk.isalnum() else _chunk_tokens(chunk)
            for chunk in map(chunks.__getitem__, chunk_ids.tolist())
        ]
        counts = np.fromiter(map(len, tokens), np.int64, len(tokens))
        base = len(self._word_index)
        ids = np.fromiter(
            map(self._word_index.__getitem__, chain.from_iterable(tokens)), np.int64, int(counts.sum())
        )
        new_words = newest_keys(self._word_index, base)
        self.words.extend(new_words)
        self._lengths.extend(np.fromiter(map(len, new_words), np.int64, len(new_words)))
        self._first.data[chunk_ids] = self._chunk_words.size + np.cumsum(counts) - counts
        self._count.data[chunk_ids] = counts
        self._chunk_words.extend(ids)


# The worker's table, shared by every text view.
WORDS = WordTable()


def split_words(text: str) -> list[str]:
    """Word and punctuation tokens of `text` (see the rules above)."""
    ids = WORDS.word_ids(WORDS.chunk_ids(text.split()))
    return list(map(WORDS.words.__getitem__, ids.tolist()))
