"""Gopher quality rules (Rae et al. 2021, "Scaling Language Models", Appendix A, Table A1 defaults).

Definitions follow datatrove 0.10's GopherQualityFilter so decisions agree with FineWeb's pipeline;
thresholds here are named for what they bound (`min_alpha_words_fraction`, not `max_non_alpha_...`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import regex

from filters.base import Bound, TextView, bounded_score, first_violated
from filters.words import WORDS

# A token is a word (not a symbol) when it has a character outside punctuation, symbols, controls
# and separators: "--", "...", "#" and "|" are symbols; "3.5", "e.g." and "l'eau" are words.
_HAS_NON_SYMBOL_CHAR = regex.compile(r"[^\p{P}\p{S}\p{C}\p{Z}]").search
_HAS_LETTER = regex.compile(r"[^\W\d_]").search

# Rule order is datatrove's, so the first failing rule (the reason) matches too.
_BOUNDS = (
    Bound("words", "min_words", "gopher_too_few_words"),
    Bound("words", "max_words", "gopher_too_many_words"),
    Bound("mean_word_chars", "min_mean_word_chars", "gopher_short_words"),
    Bound("mean_word_chars", "max_mean_word_chars", "gopher_long_words"),
    Bound("hash_to_word_ratio", "max_hash_to_word_ratio", "gopher_too_many_hashes"),
    Bound("ellipsis_to_word_ratio", "max_ellipsis_to_word_ratio", "gopher_too_many_ellipses"),
    Bound("bullet_lines_fraction", "max_bullet_lines_fraction", "gopher_too_many_bullet_lines"),
    Bound("ellipsis_end_lines_fraction", "max_ellipsis_end_lines_fraction", "gopher_too_many_ellipsis_lines"),
    Bound("alpha_words_fraction", "min_alpha_words_fraction", "gopher_too_few_alpha_words"),
    Bound("distinct_stop_words", "min_distinct_stop_words", "gopher_too_few_stop_words"),
)

_WORD, _ALPHA = 1, 2


def _token_classes(token: str) -> int:
    """`_WORD` when the token is a word, plus `_ALPHA` when it has a letter; str methods settle most
    tokens before a regex is needed."""
    word = token.isalnum() or _HAS_NON_SYMBOL_CHAR(token)
    alpha = token.isalpha() or _HAS_LETTER(token)
    return (_WORD if word else 0) | (_ALPHA if alpha else 0)


STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")


@dataclass(frozen=True)
class GopherQualityConfig:
    """Table A1 thresholds; `None` switches a rule off."""

    min_words: int | None = 50
    max_words: int | None = 100_000
    min_mean_word_chars: float | None = 3.0
    max_mean_word_chars: float | None = 10.0
    max_hash_to_word_ratio: float | None = 0.1
    max_ellipsis_to_word_ratio: float | None = 0.1
    max_bullet_lines_fraction: float | None = 0.9
    max_ellipsis_end_lines_fraction: float | None = 0.3
    min_alpha_words_fraction: float | None = 0.8
    min_distinct_stop_words: int | None = 2
    stop_words: tuple[str, ...] = STOP_WORDS


def gopher_quality_scores(view: TextView, stop_words: frozenset[str]) -> dict[str, float]:
    """Word counts, ratios and line fractions that Table A1 bounds.

    `words` and `mean_word_chars` count words only; the hash, ellipsis and alphabetic ratios divide by
    all tokens (words and symbols), as Gopher's reference implementation in datatrove does.
    """
    ids = view.word_ids
    n_tokens = len(ids)
    # Each distinct token is classified once per worker (`WORDS.facts`); then counted in numpy.
    classes = WORDS.facts(_token_classes, _token_classes)[ids]
    is_word = (classes & _WORD).astype(bool)
    n_words = int(np.count_nonzero(is_word))
    word_chars = int(view.word_lengths[is_word].sum())
    alpha_tokens = int(np.count_nonzero(classes & _ALPHA))
    is_stop_word = WORDS.facts(stop_words, stop_words.__contains__)[ids].astype(bool)
    distinct_stop_words = len(np.unique(ids[is_stop_word]))
    lines = view.lines
    n_lines = len(lines) or 1
    text = view.text
    per_token = 1.0 / n_tokens if n_tokens else 0.0
    return {
        "words": float(n_words),
        "mean_word_chars": word_chars / n_words if n_words else 0.0,
        "hash_to_word_ratio": text.count("#") * per_token,
        "ellipsis_to_word_ratio": (text.count("...") + text.count("…")) * per_token,
        "bullet_lines_fraction": sum(line.lstrip().startswith(("•", "-")) for line in lines) / n_lines,
        "ellipsis_end_lines_fraction": sum(line.rstrip().endswith(("...", "…")) for line in lines) / n_lines,
        "alpha_words_fraction": alpha_tokens * per_token,
        "distinct_stop_words": float(distinct_stop_words),
    }


class GopherQualityFilter:
    name: ClassVar[str] = "gopher_quality_v1"
    Config = GopherQualityConfig

    def __init__(self, config: GopherQualityConfig):
        self.config = config
        self._stop_words = frozenset(config.stop_words)

    def setup(self) -> None:
        """Nothing to load: the rules are plain arithmetic on the shared word split."""

    def score(self, view: TextView) -> dict[str, float]:
        return gopher_quality_scores(view, self._stop_words)

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        return first_violated(_BOUNDS, scores, self.config)

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        return bounded_score(_BOUNDS, scores, reason)
