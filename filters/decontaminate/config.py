"""The manifest's `decontaminate` section and the versioned eval-set files it names (manifests/evals/*.yaml).

Defaults follow GPT-3's decontamination (Brown et al. 2020, appendix C): 13-word n-grams, n-grams seen in
more than 10 training documents are not evidence, matched spans cut with 200 characters either side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from curation.config import NAME_PATTERN, VERSION_PATTERN, close_matches

EvalFormat = Literal["auto", "jsonl", "json", "csv", "parquet", "arrow"]


@dataclass(frozen=True)
class FieldStripConfig:
    """Text removed from a benchmark's fields before they are indexed, because it is a prompt template and
    not the item: a `prefix` or `suffix` (compared after surrounding whitespace is trimmed) and/or every
    match of a regular expression `pattern`. Removed text leaves a space, so the words around it stay apart.
    `fields` limits it to some of the benchmark's `text_fields` (all when empty)."""

    prefix: str | None = None
    suffix: str | None = None
    pattern: str | None = None
    fields: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not (self.prefix or self.suffix or self.pattern):
            raise ValueError("a strip rule needs a non-empty 'prefix', 'suffix' or 'pattern'")
        if self.pattern:
            try:
                compiled = re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(
                    f"strip pattern {self.pattern!r} is not a regular expression: {exc}"
                ) from None
            if compiled.fullmatch(""):
                raise ValueError(f"strip pattern {self.pattern!r} matches the empty string")


@dataclass(frozen=True)
class EvalSetConfig:
    """One benchmark read from local files.

    `text_fields` name the fields that hold its text, dotted for nested values (`choices.text`); a list
    value contributes each element. Paths are relative to the file that declares the benchmark.
    """

    name: str
    paths: list[str]
    text_fields: list[str]
    # Field that identifies an item (dotted); without it an item is `{file name}:{row}`.
    id_field: str | None = None
    format: EvalFormat = "auto"
    # Prompt templates removed from the text fields before indexing (see FieldStripConfig).
    strip: list[FieldStripConfig] = field(default_factory=list)
    # Also remove the common templates of evaluation harnesses (filters/decontaminate/templates.py).
    strip_templates: bool = True

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"benchmark name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not self.paths:
            raise ValueError(f"benchmark {self.name!r} lists no paths")
        if not self.text_fields:
            raise ValueError(f"benchmark {self.name!r} names no text_fields")
        for rule in self.strip:
            for name in rule.fields:
                if name not in self.text_fields:
                    raise ValueError(
                        f"benchmark {self.name!r}: strip names field {name!r}, which is not one of its "
                        f"text_fields{close_matches(name, self.text_fields)}"
                    )


@dataclass(frozen=True)
class EvalSuiteConfig:
    """A versioned eval-set file: a released version never changes, a change is a new version."""

    name: str
    version: str
    benchmarks: list[EvalSetConfig]
    description: str = ""

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not VERSION_PATTERN.fullmatch(self.version):
            raise ValueError(f"version {self.version!r} must be semantic (MAJOR.MINOR.PATCH)")


@dataclass(frozen=True)
class DecontaminateConfig:
    # Versioned eval-set files (manifests/evals/*.yaml) and/or inline benchmarks, relative to the manifest.
    eval_files: list[str] = field(default_factory=list)
    evals: list[EvalSetConfig] = field(default_factory=list)
    ngram: int = 13
    # Items (or text fields) shorter than `ngram` words are matched whole; below this they are not indexed,
    # because a phrase of a few words ("the united states") is no evidence of contamination.
    min_item_words: int = 8
    # A document is contaminated by an item when this fraction of the item's words, or of one of its
    # standalone fields (not a list element such as one choice), is found in the document aligned with a
    # matching n-gram or anchor. Units shorter than `ngram` words must be found whole.
    min_overlap: float = 0.9
    # n-grams seen in more than this many training documents are not evidence (None: all are).
    max_ngram_doc_frequency: int | None = 10
    action: Literal["drop_document", "remove_span"] = "remove_span"
    span_margin_chars: int = 200
    min_piece_chars: int = 200
    max_splits: int = 10

    def __post_init__(self) -> None:
        if not self.eval_files and not self.evals:
            raise ValueError("give 'eval_files' or 'evals': nothing to decontaminate against")
        names = [b.name for b in self.evals]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmark names repeat in 'evals': {names}")
        if self.ngram < 1:
            raise ValueError(f"ngram must be at least 1, got {self.ngram}")
        if not 1 <= self.min_item_words <= self.ngram:
            raise ValueError(
                f"min_item_words must be between 1 and ngram ({self.ngram}), got {self.min_item_words}"
            )
        if not 0 < self.min_overlap <= 1:
            raise ValueError(f"min_overlap must be in (0, 1], got {self.min_overlap}")
        if self.max_ngram_doc_frequency is not None and self.max_ngram_doc_frequency < 1:
            raise ValueError(
                f"max_ngram_doc_frequency must be at least 1, got {self.max_ngram_doc_frequency}"
            )
        if min(self.span_margin_chars, self.min_piece_chars, self.max_splits) < 0:
            raise ValueError("span_margin_chars, min_piece_chars and max_splits must not be negative")
