"""The contract every filter and text modifier follows (after datatrove's BaseFilter and Dolma's taggers).

Filters only measure (`score`) and decide from stored measurements (`reject_reason`), so a manifest can
change thresholds and re-decide without re-scoring. Text is split once per document in `TextView` and
shared by every filter in a chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from filters.words import WORDS


class TextView:
    """A document's text with its lines and words computed once, lazily, and shared across filters, and
    its metadata (read only), for the filters that judge by URL or language."""

    __slots__ = ("__dict__", "metadata", "text")

    def __init__(self, text: str, metadata: Mapping[str, Any] | None = None):
        self.text = text
        self.metadata = metadata if metadata is not None else {}

    @cached_property
    def lines(self) -> list[str]:
        """Lines split at every Unicode line boundary (`\r\n`, `\r`, `\u2028`...), without the breaks."""
        return self.text.splitlines()

    @cached_property
    def nonblank_lines(self) -> list[str]:
        """Lines with at least one non-whitespace character, unstripped."""
        return [line for line in self.lines if line and not line.isspace()]

    @cached_property
    def chunks(self) -> list[str]:
        """The text split at whitespace (`str.split()`), where both the word split and fastText start."""
        return self.text.split()

    @property
    def chunk_ids(self) -> np.ndarray:
        """The chunks as ids in the worker's `WORDS` table (equal chunks, equal ids)."""
        return self._current("_chunk_ids", lambda: WORDS.chunk_ids(self.chunks))

    @property
    def word_ids(self) -> np.ndarray:
        """The words as ids in `WORDS` (equal words, equal ids), split by the rules of `filters.words`."""
        return self._current("_word_ids", lambda: WORDS.word_ids(self.chunk_ids))

    def _current(self, name: str, ids: Callable[[], np.ndarray]) -> np.ndarray:
        # Ids are cached with the table's generation: a text kept across a fresh start is looked up again.
        generation, value = self.__dict__.get(name, (None, None))
        if generation != WORDS.generation:
            value = ids()
            self.__dict__[name] = (WORDS.generation, value)
        return value

    @cached_property
    def words(self) -> list[str]:
        return list(map(WORDS.words.__getitem__, self.word_ids.tolist()))

    @cached_property
    def word_count(self) -> int:
        """`len(self.words)`, without gathering the words when no filter needs them."""
        if "_word_ids" in self.__dict__:
            return len(self.__dict__["_word_ids"][1])
        return WORDS.word_count(self.chunks)

    @cached_property
    def word_lengths(self) -> np.ndarray:
        """Characters of each word."""
        return WORDS.word_lengths(self.word_ids)

    @cached_property
    def word_labels(self) -> np.ndarray:
        """Each word labelled by the position where it first occurs: equal words, equal labels."""
        return WORDS.first_positions(self.word_ids)


@runtime_checkable
class DocumentFilter(Protocol):
    """A scoring filter. `name` carries the version (`gopher_quality_v1`); scores are plain floats."""

    name: ClassVar[str]

    def setup(self) -> None:
        """Load heavy resources (models, indexes) once per worker; cheap filters do nothing."""

    def score(self, view: TextView) -> dict[str, float]:
        """Measure the text. Pure: the same text gives the same scores."""

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        """The short reason string that drops this document, or None to keep it."""


@runtime_checkable
class TextModifier(Protocol):
    """A step that rewrites text (C4 line removal). Explicitly named: filters never quietly rewrite."""

    name: ClassVar[str]

    def setup(self) -> None: ...

    def modify(self, view: TextView) -> tuple[str, dict[str, float]]:
        """The new text and measurements of what was removed (e.g. `lines_removed`)."""


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """How a manifest names a filter: the registry key (`use`) and its overrides."""

    use: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Bound:
    """A threshold rule: the config field `limit` (named `min_*` or `max_*`) bounds the score `signal`.

    The prefix gives the direction, so a field named `min_words` cannot be used as a maximum.
    """

    signal: str
    limit: str
    reason: str

    def __post_init__(self) -> None:
        if not self.limit.startswith(("min_", "max_")):
            raise ValueError(f"bound limit {self.limit!r} must be named min_* or max_*")

    def violated(self, scores: dict[str, float], config: Any) -> bool:
        threshold = getattr(config, self.limit)
        if threshold is None:
            return False
        value = scores[self.signal]
        return value < threshold if self.limit.startswith("min_") else value > threshold


def first_violated(bounds: tuple[Bound, ...], scores: dict[str, float], config: Any) -> str | None:
    """The reason of the first bound the scores violate, in rule order; None when all hold."""
    return next((b.reason for b in bounds if b.violated(scores, config)), None)


def bounded_score(bounds: tuple[Bound, ...], scores: dict[str, float], reason: str) -> float | None:
    """The score a rejection reason was decided on (the ledger's headline number)."""
    return next((scores[b.signal] for b in bounds if b.reason == reason), None)
