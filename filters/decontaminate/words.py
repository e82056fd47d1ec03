"""Normalized words for contamination n-grams, as in GPT-3's decontamination: Unicode NFKC, lowercase,
punctuation stripped (a word is a run of letters and digits), whitespace collapsed.

Eval items and training documents go through the same function. Offsets are computed only for
documents that match, since they cost a second pass.
"""

from __future__ import annotations

import re
import unicodedata

_WORD_RE = re.compile(r"[^\W_]+")
_CHUNK_RE = re.compile(r"\S+")


def normalized_words(text: str) -> list[str]:
    if text.isascii():
        return _WORD_RE.findall(text.lower())
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


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
