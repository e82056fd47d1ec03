"""Text and URL normalization for duplicate detection, after datatrove's `simplify_text` (FineWeb).

Two documents that differ only in case, punctuation, digits, diacritics or spacing get the same
normalized text, so exact dedup and MinHash shingles see them as the same words.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import regex
import xxhash

_NUMBER_RE = regex.compile(r"\p{N}+(?:[.,٫]\p{N}+)*")
_PUNCTUATION_RE = regex.compile(r"[\p{P}\p{S}]+")
_WHITESPACE_RE = regex.compile(r"\s+")
_COMBINING_MARK_RE = regex.compile(r"\p{Mn}+")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
# Query parameters that track a visit and never change the page served.
_TRACKING_PARAM_PREFIXES = ("utm_", "fbclid", "gclid", "mc_cid", "mc_eid")


def normalize_text(text: str) -> str:
    """Lowercase, digits to 0, punctuation to spaces, diacritics stripped, whitespace collapsed."""
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
