"""The contract every filter and text modifier follows (after datatrove's BaseFilter and Dolma's taggers).

Filters only measure (`score`) and decide from stored measurements (`reject_reason`), so a manifest can
change thresholds and re-decide without re-scoring. Text is split once per document in `TextView` and
shared by every filter in a chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Protocol, runtime_checkable

import regex

# Words as runs of letters, digits and joiners, with punctuation kept as separate tokens: the same
# boundaries datatrove's spaCy-based `split_into_words` draws on English web text, without spaCy.
_WORD_RE = regex.compile(r"\w+(?:[-'’.]\w+)*|[^\w\s]", regex.UNICODE)


class TextView:
    """A document's text with its lines and words computed once, lazily, and shared across filters."""

    __slots__ = ("text", "__dict__")

    def __init__(self, text: str):
        self.text = text

    @cached_property
    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def words(self) -> list[str]:
        return _WORD_RE.findall(self.text)


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
