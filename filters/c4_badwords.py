"""C4's bad-words rule (Raffel et al. 2020, section 2.2; mC4 per language): a page holding any word of
the List of Dirty, Naughty, Obscene, and Otherwise Bad Words for its language is dropped.

As in TFDS's C4 and datatrove 0.10's C4BadWordsFilter: the text is lowercased, the list is not; a word
counts only between non-word characters or the text's ends, except in Japanese, Thai and Chinese, written
without spaces; and the allow-listed Japanese and Chinese subwords are removed from every list. Matching
is one Aho-Corasick pass (pyahocorasick) instead of one regular expression per language.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from curation import storage
from filters.base import Bound, TextView, bounded_score, first_violated
from filters.lists import SubstringMatcher, read_list

_UNSPACED_LANGUAGES = frozenset({"ja", "th", "zh"})
# Common subwords in languages without spaces, each filtering over 10% of its language's pages (C4).
_ALLOWED_SUBWORDS = frozenset({"sm", "グロ", "女の子", "性"})


@dataclass(frozen=True)
class C4BadWordsConfig:
    # A folder of `{language}.txt` lists (LDNOOBW's file names: en, de, fr-CA-u-sd-caqc, ...).
    words_dir: str
    # The metadata field naming a document's language; a document without it is in `default_language`.
    language_field: str | None = "language"
    default_language: str = "en"
    max_badwords: int | None = 0


_BOUNDS = (Bound("badwords", "max_badwords", "c4_badwords"),)


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def count_badwords(text: str, matcher: SubstringMatcher, need_boundaries: bool) -> int:
    """Occurrences of list words in lowercased `text` (between non-word characters when `need_boundaries`)."""
    lowered = text.lower()
    found = 0
    for end, word in matcher.occurrences(lowered):
        start = end - len(word) + 1
        if need_boundaries and (
            (start > 0 and _is_word_char(lowered[start - 1]))
            or (end + 1 < len(lowered) and _is_word_char(lowered[end + 1]))
        ):
            continue
        found += 1
    return found


class C4BadWordsFilter:
    name: ClassVar[str] = "c4_badwords_v1"
    Config = C4BadWordsConfig

    def __init__(self, config: C4BadWordsConfig):
        self.config = config
        self._matchers: dict[str, SubstringMatcher | None] = {}

    def setup(self) -> None:
        """Lists load on first use per language: a source meets few of the 28."""

    def _matcher(self, language: str) -> SubstringMatcher | None:
        if language not in self._matchers:
            path = storage.join(self.config.words_dir, f"{language}.txt")
            words = set(read_list(path)) - _ALLOWED_SUBWORDS if storage.exists(path) else None
            self._matchers[language] = SubstringMatcher(words) if words is not None else None
        return self._matchers[language]

    def score(self, view: TextView) -> dict[str, float]:
        field = self.config.language_field
        language = view.metadata.get(field) if field else None
        if language is None:
            language = self.config.default_language
        matcher = self._matcher(language) if isinstance(language, str) else None
        if matcher is None:
            # No list for this language: nothing to judge by, so kept, and the score says why.
            return {"badwords": 0.0, "list_missing": 1.0}
        need_boundaries = language not in _UNSPACED_LANGUAGES
        return {"badwords": float(count_badwords(view.text, matcher, need_boundaries)), "list_missing": 0.0}

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        return first_violated(_BOUNDS, scores, self.config)

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        return bounded_score(_BOUNDS, scores, reason)
