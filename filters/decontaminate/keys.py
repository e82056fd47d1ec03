"""64-bit keys of words and n-grams, computed for a whole text at once with numpy: a word's key is a
polynomial hash of its code points, an n-gram's a polynomial hash of its words' keys, each read off prefix
sums (Karp-Rabin), then mixed so every bit depends on every input. No Python object per word is made, so a
document is screened against the index without building its word list.
"""

from __future__ import annotations

import functools

import numpy as np
import xxhash

_NAME = "decon_v1"


def _odd_constant(purpose: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{_NAME}/{purpose}".encode()) | 1


_CHAR_BASE = _odd_constant("char-base")
_WORD_BASE = _odd_constant("word-base")
_WORD_LENGTH_SALT = np.uint64(_odd_constant("word-length"))
_WINDOW_LENGTH_SALT = _odd_constant("window-length")
# Word keys are mixed already; a window's sum only needs its high bits (the index's Bloom filter bits) to
# depend on every word, which one multiplication gives.
_WINDOW_MULTIPLIER = np.uint64(_odd_constant("window-multiplier"))
_MASK64 = (1 << 64) - 1


@functools.cache
def _powers_up_to(base: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    """base^i and base^-i modulo 2^64 for i < size (an odd base is invertible)."""
    def powers_of(b: int) -> np.ndarray:
        factors = np.full(size, b, np.uint64)
        factors[0] = 1
        return np.cumprod(factors)

    return powers_of(base), powers_of(pow(base, -1, 1 << 64))


def _powers(base: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` powers, from a table grown by doubling so texts of any length reuse it."""
    size = 1 << max(12, (count - 1).bit_length())
    powers, inverses = _powers_up_to(base, size)
    return powers[:count], inverses[:count]


def _mix64(h: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer."""
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> np.uint64(33))
    h = h * np.uint64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> np.uint64(33))


class _SpanSums:
    """Sums of values[start + k] * base^k modulo 2^64 over any span [start, end), from one prefix sum."""

    def __init__(self, values: np.ndarray, base: int):
        powers, self._inverses = _powers(base, len(values) + 1)
        self._prefix = np.zeros(len(values) + 1, np.uint64)
        terms = self._prefix[1:]
        np.multiply(values, powers[: len(values)], out=terms, dtype=np.uint64)
        np.cumsum(terms, out=terms)

    def __call__(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        return (self._prefix[ends] - self._prefix[starts]) * self._inverses[starts]


def word_keys(code_points: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The key of each word `code_points[start:end]`."""
    lengths = (ends - starts).astype(np.uint64)
    return _mix64(_SpanSums(code_points, _CHAR_BASE)(starts, ends) + lengths * _WORD_LENGTH_SALT)


def keys_of_words(words: list[str]) -> np.ndarray:
    """`word_keys` of words given as strings (the eval vocabulary)."""
    code_points = np.frombuffer("".join(words).encode("utf-32-le", "surrogatepass"), np.uint32)
    bounds = np.concatenate([[0], np.cumsum([len(w) for w in words], dtype=np.int64)])
    return word_keys(code_points, bounds[:-1], bounds[1:])


def window_keys(
    word_keys: np.ndarray, known: np.ndarray | None, lengths: list[int]
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """For each length L: the keys of the L-word windows, and where they start; with `known`, only of the
    windows made of known words (the others cannot be indexed). Their high bits are the best mixed."""
    m = len(word_keys)
    positions = np.arange(m + 1)
    if known is not None:
        unknown_before = np.zeros(m + 1, np.int64)
        np.cumsum(~known, out=unknown_before[1:])
    sums = _SpanSums(word_keys, _WORD_BASE)
    out = {}
    for length in sorted(set(lengths)):
        count = max(0, m - length + 1)
        starts = positions[:count]
        if known is not None:
            starts = starts[unknown_before[length : length + count] == unknown_before[:count]]
        salt = np.uint64((length * _WINDOW_LENGTH_SALT) & _MASK64)
        out[length] = ((sums(starts, starts + length) + salt) * _WINDOW_MULTIPLIER, starts)
    return out
