"""The versioned mix manifest: one typed YAML schema for sources, filters, dedupe, decontamination, mix
and output, validated on load (after seqio's validated mixtures; errors name file, field, close matches).

Relative paths in a manifest are resolved against the manifest file's folder, so a manifest means the
same thing whatever the working directory; besides local paths, only s3:// URIs are read.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import orjson

from curation import storage
from curation.config import (
    NAME_PATTERN,
    VERSION_PATTERN,
    ConfigError,
    close_matches,
    from_mapping,
    join_path,
    read_yaml,
)
from curation.errors import ManifestError
from curation.places import Moves, current_location, recorded_name
from filters.decontaminate.config import DecontaminateConfig
from filters.dedupe.config import DedupeConfig

Format = Literal["auto", "jsonl", "parquet", "warc", "wet"]

# Whole numbers the manifest hash (orjson) and numpy can hold; YAML's integers are unbounded.
_INT64 = range(-(2**63), 2**63)
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")
_LANGUAGE_CODE = re.compile(r"[a-z]{2,3}|code")


@dataclass(frozen=True)
class SourceConfig:
    name: str
    paths: list[str]
    format: Format = "auto"
    text_field: str = "text"
    id_field: str = "id"
    # Dotted path of the URL inside a record (`metadata.url`, `url`); None looks in both.
    url_field: str | None = None
    # Record fields copied into `metadata`; None keeps every field that is not text or id.
    metadata_fields: list[str] | None = None
    # HTML-to-text for WARC responses: resiliparse (fast, default) or trafilatura through datatrove.
    extractor: Literal["resiliparse_article", "resiliparse", "trafilatura"] = "resiliparse_article"
    on_error: Literal["fail", "quarantine"] = "quarantine"
    # Documents larger than this (UTF-8 bytes) are quarantined as `document_too_large`.
    max_document_bytes: int = 16 * 1024 * 1024
    filters: list[dict[str, Any]] = field(default_factory=list)
    # Ids made for records without one name their file relative to this folder; default: the manifest's.
    id_root: str | None = None
    # A record whose id is unusable (empty, control characters, the reserved `#part`) or repeats an earlier
    # record's id in this source: quarantined (`invalid_id`, `duplicate_id`), or given a derived id.
    ids: Literal["quarantine", "derive"] = "quarantine"
    # Input globs skip (and count per source, as `skipped_symlinks`) symlinks whose target lies outside the
    # glob's literal folder, so a link cannot carry a file from elsewhere into a release; true follows them.
    follow_symlinks: bool = False
    # Quarantine rows are published, so they name a bad record's raw bytes by sha256 and length; true puts
    # its first 200 bytes in them instead.
    publish_excerpts: bool = False
    # For the dataset card: where the data comes from, its licence (Hugging Face's lower-case ids, one or
    # a list, `other` for the rest) and its languages (ISO 639 codes, `code` for source code).
    origin: str = ""
    license: str | list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"source name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not self.paths:
            raise ValueError(f"source {self.name!r} lists no paths")
        if self.max_document_bytes <= 0:
            raise ValueError(f"max_document_bytes must be positive, got {self.max_document_bytes}")
        for licence in self.licenses:
            if not _LICENSE_ID.fullmatch(licence):
                raise ValueError(f"license {licence!r} is not a licence id such as apache-2.0, odc-by or other")
        for language in self.languages:
            if not _LANGUAGE_CODE.fullmatch(language):
                raise ValueError(f"language {language!r} is not an ISO 639 code such as en, or code")

    @property
    def licenses(self) -> list[str]:
        return [self.license] if isinstance(self.license, str) else list(self.license)


@dataclass(frozen=True)
class MixSourceConfig:
    # Exactly one of ratio (share of target_tokens) or tokens (absolute budget).
    ratio: float | None = None
    tokens: int | None = None
    # 1 = no upsampling; 2.5 = every document at most twice plus half of them a third time.
    max_repetition: float = 1.0
    # FineWeb-2 style rehydration: repeat documents by their dedup cluster size, up to max_repetition.
    weight_by_cluster_size: bool = False

    def __post_init__(self) -> None:
        if (self.ratio is None) == (self.tokens is None):
            raise ValueError("give exactly one of 'ratio' or 'tokens'")
        if self.ratio is not None and not 0 < self.ratio <= 1:
            raise ValueError(f"ratio must be in (0, 1], got {self.ratio}")
        if self.tokens is not None and self.tokens <= 0:
            raise ValueError(f"tokens must be positive, got {self.tokens}")
        if self.max_repetition < 1:
            raise ValueError(f"max_repetition must be at least 1, got {self.max_repetition}")


@dataclass(frozen=True)
class MixConfig:
    # Total tokens to write; required when any source gives a ratio.
    target_tokens: int | None = None
    sources: dict[str, MixSourceConfig] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.target_tokens is not None and self.target_tokens <= 0:
            raise ValueError(f"target_tokens must be positive, got {self.target_tokens}")


@dataclass(frozen=True)
class OutputConfig:
    path: str
    tokenizer: str
    eos: Literal["append", "none"] = "append"
    bos: Literal["prepend", "none"] = "none"
    dtype: Literal["auto", "uint16", "uint32"] = "auto"
    # literal: text that spells a special token ("<|endoftext|>") is tokenized as ordinary text;
    # control: it becomes the control token (Hugging Face's default, unsafe on web and code text).
    special_tokens_in_text: Literal["literal", "control"] = "literal"
    shard_tokens: int = 1_000_000_000
    # numpy: OLMo-core's .npy tokens beside Dolma's .csv.gz boundaries; megatron: Megatron-LM's .bin + .idx.
    format: Literal["numpy", "megatron"] = "numpy"
    # Curated documents (after filters, dedupe, decontamination) are also written as JSONL.
    write_documents: bool = True
    documents_format: Literal["jsonl.zst", "jsonl.gz", "parquet"] = "jsonl.zst"
    documents_target_bytes: int = 256 * 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("shard_tokens", "documents_target_bytes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    seed: int
    sources: list[SourceConfig]
    output: OutputConfig
    description: str = ""
    dedupe: DedupeConfig | None = None
    decontaminate: DecontaminateConfig | None = None
    mix: MixConfig | None = None

    def __post_init__(self) -> None:
        if not NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"name {self.name!r} must be letters, digits, '.', '_' or '-'")
        if not VERSION_PATTERN.fullmatch(self.version):
            raise ValueError(f"version {self.version!r} must be semantic (MAJOR.MINOR.PATCH)")

    def source(self, name: str) -> SourceConfig:
        for s in self.sources:
            if s.name == name:
                return s
        raise KeyError(name)


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest with where it came from and its content hash."""

    manifest: Manifest
    path: Path
    sha256: str
    raw: dict[str, Any]
    # Folders of inputs that moved since the manifest's release, as `curation regenerate --input-root` gives.
    moves: Moves = ()

    def resolve(self, p: str) -> str:
        """A path the manifest names, made absolute against the manifest's folder (URIs pass through), where
        it is now: in the new folder of a move that holds it."""
        return self.relocated(self.absolute(p))

    def absolute(self, p: str) -> str:
        """A path the manifest names, made absolute against the manifest's folder, where it was named."""
        if "://" in p or os.path.isabs(p):
            return p
        return str((self.path.parent / p).resolve())

    def relocated(self, location: str) -> str:
        """Where a file the manifest names at `location` (absolute, or an S3 URI) is now."""
        if not self.moves:
            return location
        return current_location(recorded_name(location, str(self.path.parent)), str(self.path.parent), self.moves)

    def recorded(self, location: str) -> str:
        """How outputs and the lock name a file read at `location`: relative to the manifest's folder (S3 URIs
        whole), by its name before any move."""
        return recorded_name(location, str(self.path.parent), self.moves)

    @property
    def output_folder(self) -> str:
        """output.path made absolute; it is written, never moved as inputs are."""
        return self.absolute(self.manifest.output.path)


def manifest_hash(raw: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON: formatting and comments do not change it."""
    return hashlib.sha256(orjson.dumps(raw, option=orjson.OPT_SORT_KEYS)).hexdigest()


def load_manifest(path: str | os.PathLike) -> LoadedManifest:
    path = Path(path)
    raw = read_yaml(path, "manifest")
    if not isinstance(raw, dict):
        raise ManifestError(f"{path}: a manifest is a YAML mapping with name, version, seed, sources, output")
    try:
        raw = _normalize_yaml(raw)
        manifest = from_mapping(Manifest, raw)
        _check_cross_references(manifest)
    except ConfigError as exc:
        raise ManifestError(f"{path}: {exc}") from None
    return LoadedManifest(manifest=manifest, path=path.resolve(), sha256=manifest_hash(raw), raw=raw)


def _normalize_yaml(value: Any, path: str = "") -> Any:
    """YAML dates and other scalars become JSON-able, so the hash is defined for every manifest."""
    if isinstance(value, dict):
        return {str(k): _normalize_yaml(v, join_path(path, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_yaml(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise ConfigError(path, f"{value} does not fit in 64 bits (from -2**63 to 2**63 - 1)")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _check_cross_references(m: Manifest) -> None:
    names = [s.name for s in m.sources]
    seen = set()
    for i, n in enumerate(names):
        if n in seen:
            raise ConfigError(f"sources[{i}].name", f"duplicate source name {n!r}")
        seen.add(n)
    # Filter specs are validated by the filter registry, which knows each filter's config.
    from filters.registry import validate_filter_spec

    for i, s in enumerate(m.sources):
        for j, spec in enumerate(s.filters):
            validate_filter_spec(spec, f"sources[{i}].filters[{j}]")
    _check_uri_schemes(m)
    if m.dedupe is not None:
        for k, n in enumerate(m.dedupe.priority):
            if n not in seen:
                raise ConfigError(f"dedupe.priority[{k}]", f"unknown source {n!r}{close_matches(n, names)}")
    if m.mix is not None:
        for n, cfg in m.mix.sources.items():
            if n not in seen:
                raise ConfigError(f"mix.sources.{n}", f"unknown source {n!r}{close_matches(n, names)}")
        # A source the mix leaves out would have kept documents with no budget: name it rather than guess
        # whether the user meant none of its tokens or all of them.
        unlisted = [n for n in names if m.mix.sources and n not in m.mix.sources]
        if unlisted:
            raise ConfigError(
                "mix.sources",
                f"source {unlisted[0]!r} is not listed; give every source a ratio or tokens, or drop the source",
            )
        if any(c.ratio is not None for c in m.mix.sources.values()) and m.mix.target_tokens is None:
            raise ConfigError("mix.target_tokens", "required when a source gives a ratio")
        total_ratio = sum(c.ratio or 0.0 for c in m.mix.sources.values())
        if total_ratio > 1 + 1e-9:
            raise ConfigError("mix.sources", f"ratios add up to {total_ratio:.4f}, more than 1")


def _check_uri_schemes(m: Manifest) -> None:
    """Every path a run reads or writes is local or s3:// (what curation.storage serves): another scheme
    would otherwise be taken for a local folder named `gs:`, and fail only in the workers."""
    from filters.registry import MODEL_KEYS

    named = [("output.path", m.output.path), ("output.tokenizer", m.output.tokenizer)]
    for i, s in enumerate(m.sources):
        named += [(f"sources[{i}].paths[{j}]", p) for j, p in enumerate(s.paths)]
        named += [
            (f"sources[{i}].filters[{j}].{key}", spec[key])
            for j, spec in enumerate(s.filters)
            for key in MODEL_KEYS
            if isinstance(spec.get(key), str)
        ]
    if m.decontaminate is not None:
        named += [(f"decontaminate.eval_files[{k}]", p) for k, p in enumerate(m.decontaminate.eval_files)]
        named += [
            (f"decontaminate.evals[{k}].paths[{j}]", p)
            for k, b in enumerate(m.decontaminate.evals)
            for j, p in enumerate(b.paths)
        ]
    for name, value in named:
        if _URI_SCHEME.match(value) and not storage.is_s3(value):
            raise ConfigError(name, f"{value!r}: only local paths and s3:// URIs can be read")
