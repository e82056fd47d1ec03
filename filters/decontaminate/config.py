"""The manifest's `decontaminate` section."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class EvalSetConfig:
    """One benchmark read from local files; `text_fields` name the fields that hold its text."""

    name: str
    paths: list[str]
    text_fields: list[str]
    id_field: str | None = None
    format: Literal["auto", "jsonl", "json", "csv", "parquet", "arrow"] = "auto"


@dataclass(frozen=True)
class DecontaminateConfig:
    # Versioned eval-set files (manifests/evals/*.yaml) and/or inline declarations.
    eval_files: list[str] = field(default_factory=list)
    evals: list[EvalSetConfig] = field(default_factory=list)
    ngram: int = 13
    # Fraction of an item's n-grams found in a document that makes it contaminated.
    min_overlap: float = 0.8
    # n-grams seen in more than this many training documents are not evidence.
    max_ngram_doc_frequency: int = 10
    action: Literal["drop_document", "remove_span"] = "remove_span"
    span_margin_chars: int = 200
    min_piece_chars: int = 200
    max_splits: int = 10
