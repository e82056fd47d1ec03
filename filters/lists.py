"""Filter word and block lists: one entry a line (`.gz`/`.zst` read transparently), lines starting with
"#" skipped as datatrove's `parse_list` skips them, and large lists held as sorted 64-bit digests so a
worker keeps FineWeb's 4.5M-domain blocklist in about 36 MB rather than a Python set ten times that size.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator

import ahocorasick
import numpy as np
import xxhash

from curation import storage


def read_list(uri: str) -> list[str]:
    """The entries of a list file, stripped, without blank lines and "#" lines, in file order."""
    with storage.open_decompressed(uri) as raw:
        lines = io.TextIOWrapper(raw, encoding="utf-8")
        return [entry for line in lines if (entry := line.strip()) and not line.startswith("#")]


class DigestSet:
    """Membership in a large set of strings by xxh3-64 digest: 4.5M entries give a collision with
    probability about 1e-6, and a lookup is one binary search."""

    def __init__(self, entries: Iterable[str]):
        digests = np.fromiter((xxhash.xxh3_64_intdigest(e.encode()) for e in entries), np.uint64)
        self._digests = np.unique(digests)

    def __contains__(self, entry: str) -> bool:
        digest = np.uint64(xxhash.xxh3_64_intdigest(entry.encode()))
        i = int(np.searchsorted(self._digests, digest))
        return i < len(self._digests) and self._digests[i] == digest

    def __len__(self) -> int:
        return len(self._digests)


class SubstringMatcher:
    """Every occurrence of any of `words` in a text, by an Aho-Corasick automaton (pyahocorasick)."""

    def __init__(self, words: Iterable[str]):
        self._automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_STRING)
        for word in words:
            self._automaton.add_word(word, word)
        # An automaton with no words refuses to search; an empty list matches nothing.
        self._empty = len(self._automaton) == 0
        if not self._empty:
            self._automaton.make_automaton()

    def occurrences(self, text: str) -> Iterator[tuple[int, str]]:
        """(end index, word) of every occurrence, overlapping ones included, by end position."""
        return iter(()) if self._empty else self._automaton.iter(text)
