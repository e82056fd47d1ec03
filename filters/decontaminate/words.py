"""Normalized words for contamination n-grams, as in GPT-3's decontamination: Unicode NFKC, lowercase,
punctuation stripped (a word is a run of letters and digits), whitespace collapsed.

Eval items and training documents go through the same function. Offsets are computed only for
documents that match, since they cost a second pass.
"""

from __future__ import annotations

import functools
import re
import unicodedata

import numpy as np

_WORD_RE = re.compile(r"[^\W_]+")
_CHUNK_RE = re.compile(r"\S+")
_NOT_WORD_CHAR_RE = re.compile(r"[\W_]")
_BMP = 0x10000


def normalized_words(text: str) -> list[str]:
    if text.isascii():
        return _WORD_RE.findall(text.lower())
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The words of `normalized_words` as (code points of the normalized text, start, end of each word among
    them): the same words, found with array operations instead of one string per word. Code points
    outside words are zeroed (they are never read)."""
    if text.isascii():
        code_points = np.frombuffer(text.encode("ascii").translate(_ASCII_WORD_CHARS_LOWERED), np.uint8)
    else:
        if _nfkc_changeable_char().search(text):
            text = unicodedata.normalize("NFKC", text)
        normalized = text.lower()
        code_points = np.frombuffer(normalized.encode("utf-32-le", "surrogatepass"), np.uint32).copy()
        in_word = np.take(_word_chars(), code_points, mode="clip")
        if code_points.max() >= _BMP:
            astral = np.flatnonzero(code_points >= _BMP)
            in_word[astral] = [_WORD_RE.fullmatch(chr(c)) is not None for c in code_points[astral].tolist()]
        code_points[~in_word] = 0
    in_word = np.zeros(len(code_points) + 2, bool)
    np.not_equal(code_points, 0, out=in_word[1:-1])
    edges = np.flatnonzero(in_word[1:] != in_word[:-1])
    return code_points, edges[::2], edges[1::2]


@functools.cache
def _word_chars() -> np.ndarray:
    """Whether each code point of the Basic Multilingual Plane is one `_WORD_RE` puts in a word."""
    plane = "".join(map(chr, range(_BMP)))
    marked = _NOT_WORD_CHAR_RE.sub("\0", plane).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(marked, np.uint32) != 0


@functools.cache
def _nfkc_changeable_char() -> re.Pattern:
    """A character without which NFKC leaves a text as it is (NFKC of a whole text costs more than the rest
    of screening it, and most texts need none): one not NFKC on its own, a combining mark, the second of
    a canonical pair (which composes with what precedes it; Hangul vowels and trailing consonants too),
    or any character past the Basic Multilingual Plane."""
    changeable = set()
    for c in map(chr, range(0x80, _BMP)):
        if unicodedata.combining(c) or not unicodedata.is_normalized("NFKC", c):
            changeable.add(c)
        parts = unicodedata.decomposition(c).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            changeable.add(chr(int(parts[1], 16)))
    changeable.update(map(chr, range(0x1161, 0x1176)), map(chr, range(0x11A8, 0x11C3)))
    chars = "".join(re.escape(c) for c in sorted(changeable))
    return re.compile(f"[{chars}\\U00010000-\\U0010FFFF]")


# ASCII lowercased, with every character `_WORD_RE` leaves out of words as NUL (a bytes.translate table).
_ASCII_WORD_CHARS_LOWERED = bytes(
    ord(chr(c).lower()) if c < 128 and _WORD_RE.fullmatch(chr(c)) else 0 for c in range(256)
)


def chunked_words(text: str) -> list[list[str]]:
    """The normalized words of `text` grouped by the whitespace-separated chunk they come from."""
    chunks = []
    for chunk in text.split():
        # Most chunks are one plain word: skip the regex for them.
        words = [chunk.lower()] if chunk.isascii() and chunk.isalnum() else normalized_words(chunk)
        if words:
            chunks.append(words)
    return chunks


def joined_chunks(text: str) -> list[str]:
    """The words of each whitespace-separated chunk joined into one token: the words a text would have with
    its punctuation deleted rather than spaced (`f(a,b,n)` -> `fabn`, `Earth's` -> `earths`)."""
    return ["".join(chunk) for chunk in chunked_words(text)]


def normalized_words_with_offsets(text: str) -> tuple[list[str], list[int], list[int]]:
    """The words of `normalized_words` with their (start, end) character offsets in `text`.

    NFKC can change the length of text, so non-ASCII text is normalized one whitespace-separated chunk
    at a time and a word from a changed chunk gets the whole chunk's offsets.
    """
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    if text.isascii():
        for m in _WORD_RE.finditer(text.lower()):
            words.append(m.group())
            starts.append(m.start())
            ends.append(m.end())
        return words, starts, ends
    for chunk in _CHUNK_RE.finditer(text):
        raw = chunk.group()
        normalized = unicodedata.normalize("NFKC", raw).lower()
        if len(normalized) == len(raw) and unicodedata.is_normalized("NFKC", raw):
            base = chunk.start()
            for m in _WORD_RE.finditer(normalized):
                words.append(m.group())
                starts.append(base + m.start())
                ends.append(base + m.end())
        else:
            for word in _WORD_RE.findall(normalized):
                words.append(word)
                starts.append(chunk.start())
                ends.append(chunk.end())
    return words, starts, ends
