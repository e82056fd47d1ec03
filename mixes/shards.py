"""Token shards as OLMo-core's NumpyFSLDataset reads them: `part-NNNNN.npy` is a raw little-endian token array
with no .npy header (np.memmap(path, dtype, mode="r")), beside a Parquet document index `part-NNNNN.index`
and a `part-NNNNN.json` sidecar written last as the completion marker.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Self, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SHARD_FORMAT_VERSION = 1
_TEMPORARY_SUFFIX = ".tmp"

T = TypeVar("T")


@dataclass(frozen=True)
class ShardMeta:
    """What every shard of one mix shares; recorded in each sidecar."""

    dtype: str
    vocab_size: int
    tokenizer_sha256: str
    eos_id: int | None
    bos_id: int | None
    manifest_name: str
    manifest_version: str
    manifest_sha256: str

    def __post_init__(self) -> None:
        if self.dtype not in ("uint16", "uint32"):
            raise ValueError(f"shard dtype must be uint16 or uint32, got {self.dtype!r}")
        if self.vocab_size > np.iinfo(self.dtype).max + 1:
            raise ValueError(f"{self.dtype} cannot hold ids of a {self.vocab_size:,}-token vocabulary")


@dataclass(frozen=True)
class DocRecord:
    """One document in a shard's index: its id, which copy it is, and where its text was read."""

    doc_id: str
    source: str
    repetition: int = 0
    uri: str = ""
    line: int | None = None
    offset: int | None = None


_INDEX_SCHEMA = pa.schema(
    [
        ("start", pa.uint64()),
        ("end", pa.uint64()),
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("repetition", pa.uint32()),
        ("uri", pa.string()),
        ("line", pa.int64()),
        ("offset", pa.int64()),
    ]
)


@dataclass(frozen=True)
class ShardPaths:
    tokens: Path
    index: Path
    sidecar: Path

    @classmethod
    def of(cls, out_dir: str | os.PathLike, shard_index: int) -> ShardPaths:
        stem = Path(out_dir) / f"part-{shard_index:05d}"
        return cls(stem.with_suffix(".npy"), stem.with_suffix(".index"), stem.with_suffix(".json"))

    @classmethod
    def beside(cls, path: str | os.PathLike) -> ShardPaths:
        """The paths of the shard that `path` (its .npy, .index or .json) belongs to."""
        stem = Path(path).with_suffix("")
        return cls(stem.with_suffix(".npy"), stem.with_suffix(".index"), stem.with_suffix(".json"))


def _temporary(path: Path) -> Path:
    return path.with_name(path.name + _TEMPORARY_SUFFIX)


class ShardWriter:
    """Appends documents to one shard under temporary names; `close` renames the tokens and index into place
    and writes the sidecar last, so a shard without a sidecar is unfinished. Used as a context manager, an
    exception removes everything the writer made."""

    def __init__(self, out_dir: str | os.PathLike, shard_index: int, meta: ShardMeta):
        self.paths = ShardPaths.of(out_dir, shard_index)
        self.shard_index = shard_index
        self.meta = meta
        self._dtype = np.dtype(meta.dtype).newbyteorder("<")
        self._tokens_file = open(_temporary(self.paths.tokens), "wb")  # noqa: SIM115 - closed in close/abort
        self._tokens_sha256 = hashlib.sha256()
        self._token_count = 0
        self._rows: dict[str, list] = {name: [] for name in _INDEX_SCHEMA.names}

    def add(self, tokens: np.ndarray, doc: DocRecord) -> None:
        """Append one document's ids (BOS/EOS already in place)."""
        tokens = np.asarray(tokens)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.meta.vocab_size):
            raise ValueError(
                f"document {doc.doc_id!r} has token ids outside [0, {self.meta.vocab_size:,}): "
                f"{int(tokens.min())}..{int(tokens.max())}"
            )
        data = tokens.astype(self._dtype, copy=False).tobytes()
        self._tokens_file.write(data)
        self._tokens_sha256.update(data)
        start = self._token_count
        self._token_count += tokens.size
        for name, value in (("start", start), ("end", self._token_count), *asdict(doc).items()):
            self._rows[name].append(value)

    def close(self) -> dict:
        """Finish the shard and return its sidecar."""
        self._tokens_file.close()
        index_table = pa.table(self._rows, schema=_INDEX_SCHEMA)
        pq.write_table(index_table, _temporary(self.paths.index), compression="zstd")
        sidecar = {
            "format_version": SHARD_FORMAT_VERSION,
            "shard_index": self.shard_index,
            **asdict(self.meta),
            "byte_order": "little",
            "tokens": self._token_count,
            "documents": index_table.num_rows,
            "tokens_file": self.paths.tokens.name,
            "tokens_sha256": self._tokens_sha256.hexdigest(),
            "index_file": self.paths.index.name,
            "index_format": "parquet",
            "index_sha256": _file_sha256(_temporary(self.paths.index)),
        }
        os.replace(_temporary(self.paths.tokens), self.paths.tokens)
        os.replace(_temporary(self.paths.index), self.paths.index)
        _temporary(self.paths.sidecar).write_bytes(
            json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n"
        )
        os.replace(_temporary(self.paths.sidecar), self.paths.sidecar)
        return sidecar

    def abort(self) -> None:
        self._tokens_file.close()
        for path in (self.paths.tokens, self.paths.index, self.paths.sidecar):
            _temporary(path).unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def plan_shards(entries: Sequence[tuple[T, int]], shard_tokens: int) -> list[list[T]]:
    """Split ordered (entry, n_tokens) into shards of at most shard_tokens, keeping every document whole:
    a shard closes when the next document would pass shard_tokens, unless it is empty."""
    if shard_tokens <= 0:
        raise ValueError(f"shard_tokens must be positive, got {shard_tokens}")
    shards: list[list[T]] = []
    current: list[T] = []
    current_tokens = 0
    for entry, n_tokens in entries:
        if current and current_tokens + n_tokens > shard_tokens:
            shards.append(current)
            current, current_tokens = [], 0
        current.append(entry)
        current_tokens += n_tokens
    if current:
        shards.append(current)
    return shards


@dataclass(frozen=True)
class Shard:
    paths: ShardPaths
    sidecar: dict
    tokens: np.ndarray
    index: pa.Table


def read_shard(path: str | os.PathLike, verify: bool = False) -> Shard:
    """Open a finished shard from any of its files; `verify` checks the sidecar's sha256s."""
    paths = ShardPaths.beside(path)
    if not paths.sidecar.exists():
        raise FileNotFoundError(f"{paths.sidecar}: no sidecar, so the shard is missing or unfinished")
    sidecar = json.loads(paths.sidecar.read_bytes())
    if verify:
        for name, file in (("tokens", paths.tokens), ("index", paths.index)):
            if _file_sha256(file) != sidecar[f"{name}_sha256"]:
                raise ValueError(f"{file}: sha256 differs from its sidecar")
    dtype = np.dtype(sidecar["dtype"]).newbyteorder("<")
    tokens = np.memmap(paths.tokens, dtype=dtype, mode="r") if sidecar["tokens"] else np.empty(0, dtype)
    if len(tokens) != sidecar["tokens"]:
        raise ValueError(f"{paths.tokens}: {len(tokens):,} tokens, the sidecar says {sidecar['tokens']:,}")
    return Shard(paths, sidecar, tokens, pq.read_table(paths.index))


def iter_documents(shard: Shard) -> Iterator[tuple[DocRecord, np.ndarray]]:
    """Each document's index record and its token ids, in shard order."""
    for row in shard.index.to_pylist():
        start, end = row.pop("start"), row.pop("end")
        yield DocRecord(**row), shard.tokens[start:end]


class FslInstances:
    """Fixed-length training instances as OLMo-core's NumpyFSLDataset forms them: each file gives
    size // sequence_length instances of consecutive tokens, its remainder is dropped, and files follow in
    order. Instances never span two files."""

    def __init__(self, paths: Sequence[str | os.PathLike], dtype: str | np.dtype, sequence_length: int):
        self.paths = [Path(p) for p in paths]
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.sequence_length = sequence_length
        counts = [p.stat().st_size // (self.dtype.itemsize * sequence_length) for p in self.paths]
        self.offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"instance {index} is out of range for {len(self)} instances")
        file_index = int(np.searchsorted(self.offsets, index, side="right")) - 1
        start = (index - int(self.offsets[file_index])) * self.sequence_length
        tokens = np.memmap(self.paths[file_index], dtype=self.dtype, mode="r")
        return np.array(tokens[start : start + self.sequence_length])


def fsl_instances(
    paths: Sequence[str | os.PathLike], dtype: str | np.dtype, sequence_length: int
) -> FslInstances:
    return FslInstances(paths, dtype, sequence_length)
