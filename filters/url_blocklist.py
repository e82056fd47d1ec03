"""URL blocklist (RefinedWeb, Penedo et al. 2023, section G.1; FineWeb's first filter): a document is
dropped for its URL: its registered domain or full hostname on a domain blocklist, the URL itself on a URL
blocklist, a banned word among the URL's words, too many soft-banned words, or a banned subword anywhere in
the URL with its punctuation removed.

Rules and their order follow datatrove 0.10's URLFilter, which takes the same lists. Two choices differ
and are measured in tests/filters/test_url_blocklist_parity.py: URL words are lowercased before matching
the (lowercased) word lists, and registered domains come from tldextract's bundled public-suffix snapshot,
never fetched at run time, so the same URL gets the same verdict on any machine and day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar

import tldextract

from filters.base import Bound, TextView, bounded_score, first_violated
from filters.lists import DigestSet, SubstringMatcher, read_list

_NON_ALPHANUMERIC = re.compile(r"[^a-zA-Z0-9]+")
# No suffix-list download (offline, and the same answer every day): the snapshot tldextract ships.
_DOMAIN_PARTS = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


def normalize(text: str) -> str:
    """Lowercase ASCII letters and digits only, as the word lists are compared (datatrove's `normalize`)."""
    return _NON_ALPHANUMERIC.sub("", text).lower()


@dataclass(frozen=True)
class URLBlocklistConfig:
    """List files, one entry a line (a manifest names them; the lock records their sha256)."""

    # Registered domains and full hostnames ("example.com", "www.example.com").
    domains_file: str | None = None
    # Whole URLs as they appear in the document's URL field.
    urls_file: str | None = None
    banned_words_file: str | None = None
    banned_subwords_file: str | None = None
    soft_banned_words_file: str | None = None
    # FineWeb drops a URL with two soft-banned words: at most one is kept.
    max_soft_banned_words: int | None = 1


_BOUNDS = (Bound("soft_banned_words", "max_soft_banned_words", "url_soft_banned_words"),)
# Rules decided on by being set (1.0) or counted at all, in datatrove's order around the soft-word bound.
_HARD_RULES_BEFORE_SOFT = (
    ("blocked_domain", "url_blocked_domain"),
    ("blocked_hostname", "url_blocked_hostname"),
    ("blocked_url", "url_blocked_url"),
    ("banned_words", "url_banned_word"),
)
_HARD_RULES_AFTER_SOFT = (("banned_subwords", "url_banned_subword"),)


class URLBlocklistFilter:
    name: ClassVar[str] = "url_blocklist_v1"
    Config = URLBlocklistConfig

    def __init__(self, config: URLBlocklistConfig):
        self.config = config
        self._lists: tuple | None = None

    def setup(self) -> None:
        if self._lists is None:
            c = self.config
            self._lists = (
                DigestSet(_entries(c.domains_file)),
                DigestSet(_entries(c.urls_file)),
                frozenset(map(normalize, _entries(c.banned_words_file))),
                SubstringMatcher(filter(None, map(normalize, _entries(c.banned_subwords_file)))),
                frozenset(map(normalize, _entries(c.soft_banned_words_file))),
            )

    def score(self, view: TextView) -> dict[str, float]:
        self.setup()
        domains, urls, banned_words, banned_subwords, soft_banned_words = self._lists
        url = view.metadata.get("url")
        if not isinstance(url, str) or not url:
            return {"url_missing": 1.0}
        parts = _DOMAIN_PARTS(url)
        registered = parts.top_domain_under_public_suffix
        words = set(_NON_ALPHANUMERIC.split(url.lower()))
        return {
            "url_missing": 0.0,
            "blocked_domain": float(bool(registered) and registered in domains),
            "blocked_hostname": float(bool(parts.fqdn) and parts.fqdn in domains),
            "blocked_url": float(url in urls or url.split("://", 1)[-1] in urls),
            "banned_words": float(len(words & banned_words)),
            "soft_banned_words": float(len(words & soft_banned_words)),
            "banned_subwords": float(sum(1 for _ in banned_subwords.occurrences(normalize(url)))),
        }

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        if scores["url_missing"]:
            return None
        for signal, reason in _HARD_RULES_BEFORE_SOFT:
            if scores[signal]:
                return reason
        soft = first_violated(_BOUNDS, scores, self.config)
        if soft is not None:
            return soft
        return next((reason for signal, reason in _HARD_RULES_AFTER_SOFT if scores[signal]), None)

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        signal = {r: s for s, r in _HARD_RULES_BEFORE_SOFT + _HARD_RULES_AFTER_SOFT}.get(reason)
        return scores[signal] if signal else bounded_score(_BOUNDS, scores, reason)


def _entries(uri: str | None) -> list[str]:
    return read_list(uri) if uri else []
