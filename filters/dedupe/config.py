"""The manifest's `dedupe` section: which methods run, at what scope, and with which parameters."""

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
    # Shorter paragraphs (after stripping whitespace) are never removed: headers, "Share", blank lines.
    min_paragraph_chars: int = 60

    def __post_init__(self) -> None:
        if self.min_paragraph_chars < 1:
            raise ValueError(f"min_paragraph_chars must be at least 1, got {self.min_paragraph_chars}")


@dataclass(frozen=True)
class MinHashConfig:
    scope: Scope = "global"
    ngram: int = 5
    bands: int = 14
    rows: int = 8
    # When set, bands x rows are derived so the LSH S-curve crosses 0.5 at this Jaccard similarity.
    threshold: float | None = None
    # Candidate pairs below this exact shingle Jaccard are not merged (null: trust LSH alone). LSH at
    # 14 x 8 also pairs 5-21% of documents at Jaccard 0.5-0.6; checking lifts precision from ~96% to
    # ~100% on the evaluation set (BENCHMARKS.md) at the cost of shuffling shingle hashes of candidates.
    verify_jaccard: float | None = 0.8
    # Large-star/small-star rounds before the fixed-point check; edges still crossing labels after
    # these rounds are resolved in one small residual step, so the result never depends on this value.
    component_rounds: int = 3
    # Band rows (32 bytes per document and band) are grouped and sorted in this many shards of band
    # keys: more shards, more parallelism and less memory per shard; the buckets found are the same.
    band_shards: int = 256
    # Name the hash permutations are derived from; changing it changes every signature.
    seed_name: str = "minhash_v1"

    def __post_init__(self) -> None:
        if self.ngram < 1 or self.bands < 1 or self.rows < 1:
            raise ValueError("ngram, bands and rows must be at least 1")
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")
        if self.verify_jaccard is not None and not 0 < self.verify_jaccard <= 1:
            raise ValueError(f"verify_jaccard must be in (0, 1], got {self.verify_jaccard}")
        if self.component_rounds < 1:
            raise ValueError(f"component_rounds must be at least 1, got {self.component_rounds}")
        if self.band_shards < 1:
            raise ValueError(f"band_shards must be at least 1, got {self.band_shards}")


@dataclass(frozen=True)
class DedupeConfig:
    # Source names in order of preference for the kept copy; ties then go to the smallest content hash.
    priority: list[str] = field(default_factory=list)
    exact: ExactDedupeConfig | None = None
    url: UrlDedupeConfig | None = None
    paragraph: ParagraphDedupeConfig | None = None
    minhash: MinHashConfig | None = None
