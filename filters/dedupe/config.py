"""The manifest's `dedupe` section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Scope = Literal["per_source", "global"]


@dataclass(frozen=True)
class ExactDedupeConfig:
    scope: Scope = "global"


@dataclass(frozen=True)
class UrlDedupeConfig:
    scope: Scope = "global"


@dataclass(frozen=True)
class ParagraphDedupeConfig:
    scope: Scope = "global"
    min_paragraph_chars: int = 60


@dataclass(frozen=True)
class MinHashConfig:
    scope: Scope = "global"
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    # When set, bands x rows are derived so the LSH S-curve crosses 0.5 at this Jaccard similarity.
    threshold: float | None = None
    # When set, candidate pairs below this exact Jaccard similarity are not merged.
    verify_jaccard: float | None = None


@dataclass(frozen=True)
class DedupeConfig:
    # Source names in order of preference for the kept copy; ties then go to the smallest content hash.
    priority: list[str] = field(default_factory=list)
    exact: ExactDedupeConfig | None = None
    url: UrlDedupeConfig | None = None
    paragraph: ParagraphDedupeConfig | None = None
    minhash: MinHashConfig | None = None
