"""Benchmarks read from files (JSONL, JSON, CSV, Parquet, Hugging Face Arrow), local or on S3, into eval items.

A benchmark is declared in the manifest or in a versioned file under manifests/evals/; its files are read
through curation.storage (never fetched from a hub), and the declared text fields (dotted for nested values, lists flattened) become the
item's text segments.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.ipc
import pyarrow.parquet as pq

from curation import storage
from curation.config import ConfigError, close_matches, from_mapping, read_yaml
from curation.errors import InputError, ManifestError
from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig, EvalSuiteConfig
from filters.decontaminate.templates import field_stripper

# Where a declared eval file is now, when inputs moved since a release (LoadedManifest.relocated).
Relocate = Callable[[str], str] | None


@dataclass(frozen=True, slots=True)
class EvalItem:
    """One benchmark item: its text segments in declared field order (a list field gives one per element).

    `standalone[i]` says segment i is a whole field (a question, a passage) rather than an element of a
    list (one of the choices): only whole fields count as evidence on their own.
    """

    benchmark: str
    item_id: str
    segments: tuple[str, ...]
    standalone: tuple[bool, ...]


@dataclass(frozen=True, slots=True)
class ResolvedBenchmark:
    """A benchmark declaration with its paths made absolute against the file that declared it (S3 URIs as
    they are)."""

    config: EvalSetConfig
    paths: tuple[str, ...]


def load_eval_suite(path: str | Path) -> EvalSuiteConfig:
    raw = read_yaml(path, "eval-set")
    try:
        return from_mapping(EvalSuiteConfig, raw)
    except ConfigError as exc:
        raise ManifestError(f"{path}: {exc}") from None


def resolve_benchmarks(
    config: DecontaminateConfig, base_dir: str | Path, relocate: Relocate = None
) -> list[ResolvedBenchmark]:
    """Every declared benchmark, from eval-set files then inline, with absolute paths; names are unique.
    `relocate` maps each file as declared to where it is now (inputs moved since a release)."""
    moved = relocate or (lambda path: path)
    resolved: list[ResolvedBenchmark] = []
    for eval_file in config.eval_files:
        suite_path = _absolute(eval_file, str(base_dir))
        suite = load_eval_suite(moved(suite_path))
        resolved += [_resolve(b, posixpath.dirname(suite_path), moved) for b in suite.benchmarks]
    resolved += [_resolve(b, str(base_dir), moved) for b in config.evals]
    seen: set[str] = set()
    for b in resolved:
        if b.config.name in seen:
            raise ManifestError(f"benchmark {b.config.name!r} is declared twice in decontaminate")
        seen.add(b.config.name)
    return resolved


def _resolve(benchmark: EvalSetConfig, folder: str, moved: Callable[[str], str]) -> ResolvedBenchmark:
    return ResolvedBenchmark(benchmark, tuple(moved(_absolute(p, folder)) for p in benchmark.paths))


def _absolute(path: str, folder: str) -> str:
    """A path as declared by a file in `folder` (a local folder or an S3 prefix): S3 URIs as they are,
    anything else made absolute in that folder, `..` included."""
    if storage.is_s3(path):
        return path
    if storage.is_s3(folder):
        bucket, key = storage.split_s3(storage.join(folder, path))
        return f"{storage.S3_SCHEME}{bucket}/{posixpath.normpath(key)}"
    return str((Path(folder) / path).resolve())


def require_eval_file(path: str, benchmark: str) -> None:
    """A one-line InputError naming the benchmark when one of its files is missing (locally or on S3)."""
    if not (storage.exists(path) if storage.is_s3(path) else os.path.isfile(path)):
        raise InputError(f"benchmark {benchmark!r}: eval file not found: {path}")


def read_benchmark(benchmark: ResolvedBenchmark) -> Iterator[EvalItem]:
    cfg = benchmark.config
    strip = field_stripper(cfg)
    for path in benchmark.paths:
        require_eval_file(path, cfg.name)
        fields_seen: set[str] = set()
        record: Any = {}
        for row, record in enumerate(_read_records(cfg.name, path, cfg.format)):
            segments: list[str] = []
            standalone: list[bool] = []
            for name in cfg.text_fields:
                value = _lookup(record, name)
                texts = [s for s in (strip(name, t) for t in _texts(value)) if s.strip()]
                if texts:
                    fields_seen.add(name)
                    segments += texts
                    standalone += [not isinstance(value, list)] * len(texts)
            item_id = _lookup(record, cfg.id_field) if cfg.id_field else None
            item_id = str(item_id) if item_id is not None else f"{posixpath.basename(path)}:{row}"
            yield EvalItem(cfg.name, item_id, tuple(segments), tuple(standalone))
        missing = [f for f in cfg.text_fields if f not in fields_seen]
        if missing:
            keys = list(record) if isinstance(record, dict) else []
            raise InputError(
                f"benchmark {cfg.name!r}: text field {missing[0]!r} has text in no record of {path}"
                f"{close_matches(missing[0], keys)}; fields: {', '.join(map(str, keys))}"
            )


def _lookup(record: Any, dotted: str) -> Any:
    value = record
    for part in dotted.split("."):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list):
            # `choices.text` over a list of mappings collects the field from each element.
            value = [v.get(part) if isinstance(v, dict) else None for v in value]
        else:
            return None
    return value


def _texts(value: Any) -> list[str]:
    if isinstance(value, list):
        return [t for v in value for t in _texts(v)]
    if value is None or isinstance(value, dict):
        return []
    return [str(value)]


def _detect_format(path: str) -> str:
    codec = storage.compression_of(path)
    last = posixpath.splitext(path.removesuffix(f".{codec}") if codec else path)[1]
    formats = {
        ".jsonl": "jsonl",
        ".ndjson": "jsonl",
        ".json": "json",
        ".csv": "csv",
        ".parquet": "parquet",
        ".arrow": "arrow",
    }
    if last not in formats:
        raise InputError(f"{path}: cannot tell the eval file format from its name; set 'format'")
    return formats[last]


def _open_bytes(path: str) -> bytes:
    with storage.open_decompressed(path) as f:
        return f.read()


def _read_records(benchmark: str, path: str, fmt: str) -> Iterator[dict[str, Any]]:
    """The file's records; a file that cannot be parsed is an InputError naming the benchmark and the file."""
    try:
        fmt = _detect_format(path) if fmt == "auto" else fmt
        yield from _parse_records(path, fmt)
    except InputError as exc:
        raise InputError(f"benchmark {benchmark!r}: {exc}") from None
    except (*storage.DECOMPRESSION_ERRORS, ValueError, csv.Error, pa.ArrowException) as exc:
        raise InputError(f"benchmark {benchmark!r}: {path}: cannot read as {fmt} ({exc})") from None


def _parse_records(path: str, fmt: str) -> Iterator[dict[str, Any]]:
    if fmt == "parquet":
        yield from pq.read_table(storage.local_file(path)).to_pylist()
    elif fmt == "arrow":
        yield from _read_arrow(storage.local_file(path)).to_pylist()
    elif fmt == "csv":
        yield from csv.DictReader(io.StringIO(_open_bytes(path).decode("utf-8-sig")))
    elif fmt == "jsonl":
        for number, line in enumerate(_open_bytes(path).splitlines(), 1):
            if line.strip():
                yield _json_line(path, number, line)
    else:
        yield from _json_records(path, orjson.loads(_open_bytes(path)))


def _json_line(path: str, number: int, line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}:{number}: not valid JSON ({exc})") from None


def _read_arrow(path: str) -> pa.Table:
    """Hugging Face `datasets` saves Arrow IPC streams; plain Arrow files use the random-access format."""
    with pa.memory_map(path) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            source.seek(0)
            return pa.ipc.open_file(source).read_all()


def _json_records(path: str, data: Any) -> list[dict[str, Any]]:
    if isinstance(data, list):
        return data
    lists = [v for v in data.values() if isinstance(v, list)] if isinstance(data, dict) else []
    if len(lists) != 1:
        raise InputError(f"{path}: a JSON eval file holds a list of records, or a mapping with one such list")
    return lists[0]
