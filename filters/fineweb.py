"""FineWeb quality rules (Penedo et al. 2024, "The FineWeb Datasets", section 3.3 custom filters).

Definitions follow datatrove 0.10's FineWebQualityFilter: the share of lines ending in sentence-terminal
punctuation, the share of short lines, characters in duplicated lines, and newlines per word.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import regex

from filters.base import Bound, TextView, bounded_score, first_violated
from filters.gopher_repetition import duplicate_count_and_chars

_ENDS_IN_TERMINAL_PUNCTUATION = regex.compile(r"\p{Sentence_Terminal}$").search


@dataclass(frozen=True)
class FineWebQualityConfig:
    min_terminal_punctuation_lines_fraction: float | None = 0.12
    # FineWeb's option to spare documents with no terminal punctuation at all (e.g. non-Latin scripts).
    keep_without_terminal_punctuation: bool = False
    # Lines of at most this many characters count as short (shapes the score, so it is not a threshold).
    short_line_chars: int = 30
    max_short_lines_fraction: float | None = 0.67
    max_dup_line_char_fraction: float | None = 0.01
    max_newline_to_word_ratio: float | None = 0.3

    DECISION_FIELDS: ClassVar[tuple[str, ...]] = ("keep_without_terminal_punctuation",)


def fineweb_quality_scores(view: TextView, short_line_chars: int) -> dict[str, float]:
    """Line fractions over non-blank lines; duplicated-line characters over the text without newlines."""
    lines = view.nonblank_lines
    n_lines = len(lines) or 1
    text = view.text
    chars_without_newlines = len(text) - text.count("\n")
    return {
        "terminal_punctuation_lines_fraction": sum(1 for line in lines if _ENDS_IN_TERMINAL_PUNCTUATION(line))
        / n_lines,
        "short_lines_fraction": sum(map(short_line_chars.__ge__, map(len, lines))) / n_lines,
        "dup_line_char_fraction": (
            duplicate_count_and_chars(lines)[1] / chars_without_newlines if chars_without_newlines else 0.0
        ),
        "newline_to_word_ratio": text.count("\n") / (view.word_count or 1),
    }


_BOUNDS = (
    Bound("short_lines_fraction", "max_short_lines_fraction", "fineweb_short_lines"),
    Bound("dup_line_char_fraction", "max_dup_line_char_fraction", "fineweb_dup_line_chars"),
    Bound("newline_to_word_ratio", "max_newline_to_word_ratio", "fineweb_list_like"),
)
_TERMINAL_PUNCTUATION_BOUND = Bound(
    "terminal_punctuation_lines_fraction",
    "min_terminal_punctuation_lines_fraction",
    "fineweb_few_terminal_punctuation",
)


class FineWebQualityFilter:
    name: ClassVar[str] = "fineweb_quality_v1"
    Config = FineWebQualityConfig

    def __init__(self, config: FineWebQualityConfig):
        self.config = config

    def setup(self) -> None:
        """Nothing to load: the rules are plain arithmetic on the shared word split."""

    def score(self, view: TextView) -> dict[str, float]:
        return fineweb_quality_scores(view, self.config.short_line_chars)

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        spared = (
            self.config.keep_without_terminal_punctuation
            and scores["terminal_punctuation_lines_fraction"] == 0
        )
        if not spared and _TERMINAL_PUNCTUATION_BOUND.violated(scores, self.config):
            return _TERMINAL_PUNCTUATION_BOUND.reason
        return first_violated(_BOUNDS, scores, self.config)

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        return bounded_score((_TERMINAL_PUNCTUATION_BOUND, *_BOUNDS), scores, reason)
