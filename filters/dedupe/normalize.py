"""Text and URL normalization for duplicate detection, after datatrove's `simplify_text` (FineWeb).

Two documents that differ only in case, punctuation, digits, diacritics or spacing get the same
normalized text, so exact dedup and MinHash shingles see them as the same words.
"""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import regex
import xxhash

_NUMBER_RE = regex.compile(r"\p{N}+(?:[.,٫]\p{N}+)*")
_PUNCTUATION_RE = regex.compile(r"[\p{P}\p{S}]+")
_WHITESPACE_RE = regex.compile(r"\s+")
_COMBINING_MARK_RE = regex.compile(r"\p{Mn}+")
# Below 128, \p{N} is 0-9, \p{P} and \p{S} are exactly string.punctuation and \s is these five
# controls and the space; the ASCII path relies on it to give the Unicode path's result.
# Digits all become 0 with the lowercasing, one table over bytes, so a number is a run of zeros that a
# pattern starting with a literal finds fast (the same numbers as [0-9]+(?:[.,][0-9]+)*).
_ASCII_LOWER_ZERO = bytes.maketrans(
    (string.ascii_uppercase + string.digits).encode(), (string.ascii_lowercase + "0" * 10).encode()
)
_ASCII_NUMBER_RE = re.compile(rb"0(?:0|[.,]0)*")
_ASCII_SPACED = (string.punctuation + "\t\n\x0b\x0c\r").encode()
_ASCII_TO_SPACE = bytes.maketrans(_ASCII_SPACED, b" " * len(_ASCII_SPACED))
_SPACES_RE = re.compile(rb"  +")
_NON_ASCII_RE = re.compile(r"[^\x00-\x7f]+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Query parameters that track a visit and never change the page served.
_TRACKING_PARAM_PREFIXES = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")


def normalize_text(text: str) -> str:
    """Lowercase, digits to 0, punctuation to spaces, diacritics stripped, whitespace collapsed."""
    if text.isascii():
        return _normalize_ascii(text.encode("ascii"))
    # Most non-ASCII web text is English with typographic quotes, dashes, no-break spaces or accented
    # Latin letters: each such character, once lowercased, becomes what the Unicode path makes of it
    # (a space, or its base letters), and the ASCII path finishes the text at a quarter of the cost.
    asciified = _NON_ASCII_RE.sub(_ascii_run, text.lower())
    if asciified.isascii():
        # str.strip() also strips \x1c-\x1f, as the Unicode path's does.
        return _normalize_ascii(asciified.encode("ascii")).strip()
    return normalize_unicode_text(text)


def _normalize_ascii(data: bytes) -> str:
    """`normalize_unicode_text` for ASCII bytes, by translate tables and two `re` passes: 3x faster. After
    the table only spaces remain of the Unicode path's \\s (\\x1c-\\x1f stay inside words on both paths),
    so collapsing runs of spaces collapses what it does."""
    spaced = _ASCII_NUMBER_RE.sub(b"0", data.translate(_ASCII_LOWER_ZERO)).translate(_ASCII_TO_SPACE)
    return _SPACES_RE.sub(b" ", spaced).strip(b" ").decode("ascii")


def _ascii_run(match: re.Match) -> str:
    return "".join(map(_ascii_form, match[0]))


@functools.cache
def _ascii_form(char: str) -> str:
    """What the Unicode path makes of one lowercased non-ASCII character, when that is ASCII and the same
    wherever the character stands: punctuation, symbols and spaces become a space, a letter whose
    canonical decomposition is ASCII letters and combining marks its letters. Any other character (digits,
    the decimal separator the number pattern joins on, marks standing alone, other scripts) is returned
    as it is, and the text takes the Unicode path."""
    if _NUMBER_RE.match(char) or char == "\u066b":
        return char
    if _PUNCTUATION_RE.fullmatch(char) or _WHITESPACE_RE.fullmatch(char):
        return " "
    letters = _COMBINING_MARK_RE.sub("", unicodedata.normalize("NFD", char))
    return letters if letters.isascii() and letters.isalpha() and letters.islower() else char


def normalize_unicode_text(text: str) -> str:
    """`normalize_text` for any text, by Unicode character classes."""
    text = _NUMBER_RE.sub("0", text.lower())
    text = _PUNCTUATION_RE.sub(" ", text)
    if not text.isascii():
        text = _COMBINING_MARK_RE.sub("", unicodedata.normalize("NFD", text))
    return _WHITESPACE_RE.sub(" ", text).strip()


def words(normalized: str) -> list[str]:
    return normalized.split(" ") if normalized else []


def key_digest(value: str) -> bytes:
    """16-byte digest used as a shuffle key: collisions are negligible at any corpus size."""
    return xxhash.xxh3_128_digest(value.encode("utf-8", "surrogatepass"))


def normalize_url(url: str) -> str:
    """Lowercase scheme and host, drop `www.`, default ports, fragments, tracking parameters and a
    trailing slash, and sort the query, so links to the same page compare equal."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").removeprefix("www.")
    if port is not None and str(port) != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/") or ""
    query = sorted(
        (k, v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
        if not k.lower().startswith(_TRACKING_PARAM_PREFIXES)
    )
    # http and https serve the same page for deduplication purposes.
    scheme = "https" if scheme in _DEFAULT_PORTS else scheme
    return urlunsplit((scheme, host, path, urlencode(query), ""))
