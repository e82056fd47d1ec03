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
_SEPARATOR = np.zeros(1, np.uint8)  # between two texts laid end to end


def normalized_words(text: str) -> list[str]:
    if text.isascii():
        return _WORD_RE.findall(text.lower())
    return _WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def word_spans(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The words of `normalized_words` as (code points of the text lowercased, and normalized where that
    changes its words; start, end of each word among them): the same words, found with array operations
    instead of one string per word. Code points outside words are zeroed (they are never read)."""
    code_points, starts, ends, _ = word_spans_of_texts([text])
    return code_points, starts, ends


def word_spans_of_texts(texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`word_spans` of many texts laid end to end (a zero between two texts, so no word spans two), and which
    text each word is from: a few array operations for a whole batch instead of a few per text. Texts are
    laid out in three groups: ASCII; others, each character lowercased by a table; then again, normalized
    by Python, those of the second group that a table cannot lowercase or that NFKC changes (blanked
    there)."""
    groups = [
        [i for i, t in enumerate(texts) if t.isascii()],
        [i for i, t in enumerate(texts) if not t.isascii()],
    ]
    parts = [_ascii_word_chars([texts[i] for i in groups[0]])]
    lengths = [len(texts[i]) for group in groups for i in group]
    if groups[1]:
        code_points, unusual = _word_chars_lowered_by_table([texts[i] for i in groups[1]])
        parts.append(code_points)
        groups.append([groups[1][k] for k in unusual])
        normalized = [_nfkc(texts[i]).lower() for i in groups[2]]
        parts.append(_normalized_word_chars(normalized))
        lengths += map(len, normalized)
    laid_out = [p for group, part in zip(groups, parts) if group for p in (part, _SEPARATOR)][:-1]
    code_points = laid_out[0] if len(laid_out) == 1 else np.concatenate(laid_out, dtype=np.uint32)
    in_word = np.zeros(len(code_points) + 2, bool)
    np.not_equal(code_points, 0, out=in_word[1:-1])
    edges = np.flatnonzero(in_word[1:] != in_word[:-1])
    starts, ends = edges[::2], edges[1::2]
    # Each text starts after the previous one and its separator.
    text_starts = np.cumsum([0] + [n + 1 for n in lengths[:-1]])
    order = np.array([i for group in groups for i in group], np.int64)
    return code_points, starts, ends, order[np.searchsorted(text_starts, starts, "right") - 1]


def _ascii_word_chars(texts: list[str]) -> np.ndarray:
    joined = "\0".join(texts).encode("ascii")
    return np.frombuffer(joined.translate(_ASCII_WORD_CHARS_LOWERED), np.uint8)


def _word_chars_lowered_by_table(texts: list[str]) -> tuple[np.ndarray, list[int]]:
    """The texts' code points laid end to end, lowercased, non-word characters zeroed, by one table lookup;
    and the texts where that is not their words (zeroed whole): those holding a character NFKC changes
    into word characters or that composes, one past the Basic Multilingual Plane, a capital sigma (it
    lowercases by its context) or a capital dotted I (it lowercases to two characters)."""
    lengths = list(map(len, texts))
    code_points = np.frombuffer("\0".join(texts).encode("utf-32-le", "surrogatepass"), np.uint32)
    text_starts = np.cumsum([0] + [n + 1 for n in lengths[:-1]])
    found = np.flatnonzero(np.take(_unusual_chars(), code_points, mode="clip"))
    unusual = np.unique(np.searchsorted(text_starts, found, "right") - 1).tolist()
    lowered = np.take(_lowered_word_chars(), code_points, mode="clip")
    for k in unusual:
        lowered[text_starts[k] : text_starts[k] + lengths[k]] = 0
    return lowered, unusual


def _normalized_word_chars(normalized: list[str]) -> np.ndarray:
    """The code points of normalized texts laid end to end, non-word characters zeroed."""
    code_points = np.frombuffer("\0".join(normalized).encode("utf-32-le", "surrogatepass"), np.uint32)
    in_word = np.take(_word_chars(), code_points, mode="clip")
    if len(code_points) and code_points.max() >= _BMP:
        astral = np.flatnonzero(code_points >= _BMP)
        in_word[astral] = [_WORD_RE.fullmatch(chr(c)) is not None for c in code_points[astral].tolist()]
    return code_points * in_word


@functools.cache
def _lowered_word_chars() -> np.ndarray:
    """Each code point of the Basic Multilingual Plane lowercased if `_WORD_RE` puts it in a word, else 0
    (and 0 past the plane)."""
    table = np.zeros(_BMP + 1, np.uint32)
    for code in range(_BMP):
        lowered = chr(code).lower()
        if len(lowered) == 1 and _WORD_RE.fullmatch(lowered):
            table[code] = ord(lowered)
    return table


@functools.cache
def _unusual_chars() -> np.ndarray:
    """Whether a code point stops `_lowered_word_chars` from giving a text's words (see
    `_word_chars_lowered_by_table`); every one past the Basic Multilingual Plane does. NFKC of a text whose
    changeable characters all decompose to non-word characters differs from it only outside words."""
    table = np.zeros(_BMP + 1, bool)
    table[_BMP] = True
    replacements = _replacements()
    for c in _changeable_chars():
        unchanged_words = c in replacements and not _WORD_RE.search((c + replacements[c]).lower())
        table[ord(c)] = not unchanged_words
    for code in range(_BMP):
        table[code] |= len(chr(code).lower()) != 1
    table[ord("\u03a3")] = True
    return table


def _nfkc(text: str) -> str:
    """NFKC of a text holding a non-ASCII character, computed only when it can change the text: a text
    whose only changeable characters are compatibility characters that decompose to unchangeable ones
    (no-break space, ellipsis, fullwidth punctuation, superscripts) gets their decompositions in place,
    which is exactly NFKC (it decomposes them so first) at a fraction of its cost."""
    found = set(_nfkc_changeable_char().findall(text))
    if not found:
        return text
    replacements = _replacements()
    if not all(c in replacements for c in found):
        return unicodedata.normalize("NFKC", text)
    for c in found:
        text = text.replace(c, replacements[c])
    return text


@functools.cache
def _word_chars() -> np.ndarray:
    """Whether each code point of the Basic Multilingual Plane is one `_WORD_RE` puts in a word."""
    plane = "".join(map(chr, range(_BMP)))
    marked = _NOT_WORD_CHAR_RE.sub("\0", plane).encode("utf-32-le", "surrogatepass")
    return np.frombuffer(marked, np.uint32) != 0


@functools.cache
def _changeable_chars() -> frozenset[str]:
    """The characters of the Basic Multilingual Plane without which NFKC leaves a text as it is (NFKC of a
    whole text costs more than the rest of screening it, and most texts need none): one not NFKC on its
    own, a combining mark, the second of a canonical pair (which composes with what precedes it; Hangul
    vowels and trailing consonants too). Any character past the plane counts as one too."""
    changeable = set()
    for c in map(chr, range(0x80, _BMP)):
        if unicodedata.combining(c) or not unicodedata.is_normalized("NFKC", c):
            changeable.add(c)
        parts = unicodedata.decomposition(c).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            changeable.add(chr(int(parts[1], 16)))
    changeable.update(map(chr, range(0x1161, 0x1176)), map(chr, range(0x11A8, 0x11C3)))
    return frozenset(changeable)


@functools.cache
def _replacements() -> dict[str, str]:
    """The changeable characters whose NFKD holds no changeable character, to their NFKD: a text where they
    are the only changeable ones becomes its NFKC when each is replaced so, since NFKC decomposes first."""
    changeable = _changeable_chars()
    decomposed = {c: unicodedata.normalize("NFKD", c) for c in changeable}
    return {c: d for c, d in decomposed.items() if not any(x in changeable or ord(x) >= _BMP for x in d)}


def _char_class(chars: set[str] | frozenset[str]) -> re.Pattern:
    """One of `chars`, or any character past the Basic Multilingual Plane."""
    escaped = "".join(re.escape(c) for c in sorted(chars))
    return re.compile(f"[{escaped}\\U00010000-\\U0010FFFF]")


@functools.cache
def _nfkc_changeable_char() -> re.Pattern:
    return _char_class(_changeable_chars())


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

    NFKC can change the length of text, so a whitespace-separated chunk holding a character NFKC can
    change is normalized on its own and a word from a changed chunk gets the whole chunk's offsets. The
    stretches between such chunks are NFKC already, and are split into words whole.
    """
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    out = words, starts, ends
    if text.isascii():
        _add_plain_words(text, 0, out)
        return out
    position = 0
    for chunk in _changeable_chunk().finditer(text):
        _add_plain_words(text[position : chunk.start()], position, out)
        _add_chunk_words(chunk.group(), chunk.start(), out)
        position = chunk.end()
    _add_plain_words(text[position:], position, out)
    return out


def _add_plain_words(stretch: str, base: int, out: tuple[list[str], list[int], list[int]]) -> None:
    """The words of whole chunks NFKC leaves as they are: lowercasing them all at once gives each chunk's
    lowercase (a final sigma looks no further than the whitespace around it) unless it changes a length."""
    lowered = stretch.lower()
    if len(lowered) != len(stretch):
        for chunk in _CHUNK_RE.finditer(stretch):
            _add_chunk_words(chunk.group(), base + chunk.start(), out)
        return
    _add_words(lowered, base, out)


def _add_words(lowered: str, base: int, out: tuple[list[str], list[int], list[int]]) -> None:
    """The words of normalized text that has the length of the text at `base`."""
    words, starts, ends = out
    for m in _WORD_RE.finditer(lowered):
        words.append(m.group())
        starts.append(base + m.start())
        ends.append(base + m.end())


def _add_chunk_words(raw: str, base: int, out: tuple[list[str], list[int], list[int]]) -> None:
    normalized = unicodedata.normalize("NFKC", raw).lower()
    if len(normalized) == len(raw) and unicodedata.is_normalized("NFKC", raw):
        _add_words(normalized, base, out)
        return
    words, starts, ends = out
    for word in _WORD_RE.findall(normalized):
        words.append(word)
        starts.append(base)
        ends.append(base + len(raw))


@functools.cache
def _changeable_chunk() -> re.Pattern:
    """A whitespace-separated chunk holding a character NFKC can change."""
    changeable = _char_class({c for c in _changeable_chars() if not c.isspace()})
    return re.compile(f"(?<!\\S)\\S*{changeable.pattern}\\S*")
