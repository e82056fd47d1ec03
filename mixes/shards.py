"""Token shards in the layout a trainer reads. Format `numpy` (OLMo-core's NumpyFSLDataset and its packed
and padded variants): `part-NNNNN.npy`, a raw little-endian token array with no .npy header
(np.memmap(path, dtype, mode="r")), beside Dolma's `part-NNNNN.csv.gz` of document boundaries. Format
`megatron` (Megatron-LM, NeMo, GPT-NeoX): the same raw tokens as `part-NNNNN.bin` beside Megatron's
`part-NNNNN.idx`. Either way a Parquet document index `part-NNNNN.index` records each document's provenance,
and a `part-NNNNN.json` sidecar is written last as the completion marker. Shards live on local disk or S3
alike (`curation.storage`): each is written to task-local scratch first and put in place when whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Literal, Self, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation import storage
from curation.errors import InputError
from mixes import megatron
from mixes.dolma_metadata import metadata_bytes

# 2: a trainer's document boundaries (`boundaries_file`) beside every shard, and the shard's `format`.
SHARD_FORMAT_VERSION = 2
_TEMPORARY_SUFFIX = ".tmp"

T = TypeVar("T")

ShardFormat = Literal["numpy", "megatron"]
# Per format, the token file's and the trainer's document-boundaries file's suffixes.
_TOKEN_SUFFIXES = {"numpy": ".npy", "megatron": ".bin"}
_BOUNDARIES_SUFFIXES = {"numpy": ".csv.gz", "megatron": ".idx"}


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
    format: ShardFormat = "numpy"

    def __post_init__(self) -> None:
        if self.dtype not in ("uint16", "uint32"):
            raise ValueError(f"shard dtype must be uint16 or uint32, got {self.dtype!r}")
        if self.vocab_size > np.iinfo(self.dtype).max + 1:
            raise ValueError(f"{self.dtype} cannot hold ids of a {self.vocab_size:,}-token vocabulary")
        if self.format not in _TOKEN_SUFFIXES:
            raise ValueError(f"shard format must be one of {', '.join(_TOKEN_SUFFIXES)}, got {self.format!r}")

    @property
    def token_dtype(self) -> np.dtype:
        """The token file's little-endian dtype: the tokenizer's, except that Megatron has no uint32."""
        name = megatron.TOKEN_DTYPES[self.dtype] if self.format == "megatron" else self.dtype
        return np.dtype(name).newbyteorder("<")


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
    """A shard's four files, as local paths or s3:// URIs: `stem` plus each file's suffix."""

    stem: str
    format: ShardFormat = "numpy"

    @classmethod
    def of(cls, out_dir: str | os.PathLike, shard_index: int, format: ShardFormat = "numpy") -> ShardPaths:
        return cls(storage.join(os.fspath(out_dir), f"part-{shard_index:05d}"), format)

    @classmethod
    def beside(cls, path: str | os.PathLike, format: ShardFormat = "numpy") -> ShardPaths:
        """The paths of the shard that `path` (any of its files: `part-00003.csv.gz` too) belongs to."""
        path = os.fspath(path)
        folder_end = path.rfind("/") + 1
        return cls(path[:folder_end] + path[folder_end:].split(".", 1)[0], format)

    @property
    def tokens(self) -> str:
        return self.stem + _TOKEN_SUFFIXES[self.format]

    @property
    def boundaries(self) -> str:
        return self.stem + _BOUNDARIES_SUFFIXES[self.format]

    @property
    def index(self) -> str:
        return self.stem + ".index"

    @property
    def sidecar(self) -> str:
        return self.stem + ".json"

    @property
    def data_files(self) -> tuple[str, str, str]:
        """Every file but the sidecar, which vouches for them by name and sha256."""
        return (self.tokens, self.boundaries, self.index)


def sidecar_digest(sidecar: dict, file_name: str) -> str | None:
    """The sha256 a shard's sidecar records for one of its files, by the file's name."""
    for kind in ("tokens", "boundaries", "index"):
        if sidecar.get(f"{kind}_file") == file_name:
            return sidecar[f"{kind}_sha256"]
    return None


def _name(uri: str) -> str:
    return uri.rsplit("/", 1)[-1]


class ShardWriter:
    """Appends documents to one shard in scratch files; `close` puts the tokens, the trainer's boundaries file
    and the index in place and writes the sidecar last, so a shard without a sidecar is unfinished. Locally the scratch files sit beside their
    destinations under `.tmp` names and are renamed into place; for S3 they sit in a temporary folder of this
    task's own disk and are uploaded. Used as a context manager, an exception removes everything the writer
    made."""

    def __init__(self, out_dir: str | os.PathLike, shard_index: int, meta: ShardMeta):
        self.paths = ShardPaths.of(out_dir, shard_index, meta.format)
        self.shard_index = shard_index
        self.meta = meta
        self._dtype = meta.token_dtype
        if storage.is_s3(self.paths.tokens):
            self._scratch_dir = tempfile.mkdtemp(dir=storage.scratch_dir("shards"), prefix=f"{_name(self.paths.tokens)}.")
        else:
            self._scratch_dir = None
            os.makedirs(os.path.dirname(os.path.abspath(self.paths.tokens)), exist_ok=True)
        self._tokens_file = open(self._scratch(self.paths.tokens), "wb")  # noqa: SIM115 - closed in close/abort
        self._tokens_sha256 = hashlib.sha256()
        self._token_count = 0
        self._rows: dict[str, list] = {name: [] for name in _INDEX_SCHEMA.names}

    def add(self, tokens: np.ndarray, doc: DocRecord) -> None:
        """Append one document's ids (BOS/EOS already in place)."""
        self.add_documents(tokens, [np.size(tokens)], {name: [value] for name, value in asdict(doc).items()})

    def add_documents(self, tokens: np.ndarray, lengths: Sequence[int], records: dict[str, list]) -> None:
        """Append documents given end to end: `tokens` their ids (BOS/EOS already in place), `lengths` each
        one's count, `records` the DocRecord fields as columns, one value per document. One write and one
        range check for them all, rather than one per document."""
        tokens = np.asarray(tokens)
        if tokens.size and (tokens.min() < 0 or tokens.max() >= self.meta.vocab_size):
            self._refuse_out_of_range(tokens, lengths, records["doc_id"])
        data = tokens.astype(self._dtype, copy=False).tobytes()
        self._tokens_file.write(data)
        self._tokens_sha256.update(data)
        ends = np.cumsum(lengths, dtype=np.int64) + self._token_count
        self._rows["start"] += (ends - np.asarray(lengths, np.int64)).tolist()
        self._rows["end"] += ends.tolist()
        for name, values in records.items():
            self._rows[name] += values
        self._token_count += tokens.size

    def _refuse_out_of_range(self, tokens: np.ndarray, lengths: Sequence[int], doc_ids: list[str]) -> None:
        """The error naming the first document with an id outside the vocabulary."""
        outside = np.flatnonzero((tokens < 0) | (tokens >= self.meta.vocab_size))[0]
        ends = np.cumsum(lengths)
        document = int(np.searchsorted(ends, outside, side="right"))
        ids = tokens[ends[document] - lengths[document] : ends[document]]
        raise ValueError(
            f"document {doc_ids[document]!r} has token ids outside [0, {self.meta.vocab_size:,}): "
            f"{int(ids.min())}..{int(ids.max())}"
        )

    def _scratch(self, uri: str) -> str:
        if self._scratch_dir is None:
            return uri + _TEMPORARY_SUFFIX
        return os.path.join(self._scratch_dir, _name(uri))

    def close(self) -> dict:
        """Finish the shard and return its sidecar; a failure on the way removes what was not yet in place."""
        try:
            return self._finish()
        except BaseException:
            self.abort()
            raise

    def _boundaries_bytes(self) -> bytes:
        rows = self._rows
        if self.meta.format == "megatron":
            return megatron.index_bytes(np.subtract(rows["end"], rows["start"]), self._dtype)
        locations = [line if line is not None else offset for line, offset in zip(rows["line"], rows["offset"])]
        return metadata_bytes(rows["start"], rows["end"], rows["doc_id"], rows["uri"], locations)

    def _finish(self) -> dict:
        self._tokens_file.close()
        index_table = pa.table(self._rows, schema=_INDEX_SCHEMA)
        pq.write_table(index_table, self._scratch(self.paths.index), compression="zstd")
        boundaries = self._boundaries_bytes()
        with open(self._scratch(self.paths.boundaries), "wb") as f:
            f.write(boundaries)
        sidecar = {
            "format_version": SHARD_FORMAT_VERSION,
            "shard_index": self.shard_index,
            **asdict(self.meta),
            # The token file's own dtype, which readers go by (Megatron's int32 for a uint32 tokenizer).
            "dtype": self._dtype.name,
            "byte_order": "little",
            "tokens": self._token_count,
            "documents": index_table.num_rows,
            "tokens_file": _name(self.paths.tokens),
            "tokens_sha256": self._tokens_sha256.hexdigest(),
            "boundaries_file": _name(self.paths.boundaries),
            "boundaries_sha256": hashlib.sha256(boundaries).hexdigest(),
            "index_file": _name(self.paths.index),
            "index_format": "parquet",
            "index_sha256": storage.sha256(self._scratch(self.paths.index)),
        }
        # A sidecar left by an earlier shard of this name must not vouch for the files replaced below.
        storage.remove(self.paths.sidecar)
        for uri in self.paths.data_files:
            storage.move_file(self._scratch(uri), uri)
        with storage.atomic_write(self.paths.sidecar) as f:
            f.write(json.dumps(sidecar, indent=2, sort_keys=True).encode() + b"\n")
        self._remove_scratch_dir()
        return sidecar

    def abort(self) -> None:
        self._tokens_file.close()
        for uri in self.paths.data_files:
            storage.remove(self._scratch(uri))
        self._remove_scratch_dir()

    def _remove_scratch_dir(self) -> None:
        if self._scratch_dir is not None:
            shutil.rmtree(self._scratch_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def plan_shards(entries: Sequence[tuple[T, int]], shard_tokens: int) -> list[list[T]]:
    """Split ordered (entry, n_tokens) into shards of at most shard_tokens, keeping every document whole:
    a shard closes when the next document would pass shard_tokens, unless it is empty."""
    return list(iter_shards(entries, shard_tokens))


def iter_shards(entries: Iterable[tuple[T, int]], shard_tokens: int) -> Iterator[list[T]]:
    """`plan_shards` read and given as a stream: each shard as soon as it closes."""
    if shard_tokens <= 0:
        raise ValueError(f"shard_tokens must be positive, got {shard_tokens}")
    current: list[T] = []
    current_tokens = 0
    for entry, n_tokens in entries:
        if current and current_tokens + n_tokens > shard_tokens:
            yield current
            current, current_tokens = [], 0
        current.append(entry)
        current_tokens += n_tokens
    if current:
        yield current


class StoredTokens:
    """A raw little-endian token file, local or on S3, read as it is sliced: each slice is one seek and read
    (on S3 a ranged GET; slices read in order share the reader's 1 MiB buffer), never the whole file."""

    def __init__(self, uri: str, dtype: str | np.dtype, length: int | None = None):
        """`length` in tokens, when recorded with the file, spares S3 a HEAD."""
        self.uri = uri
        self.dtype = np.dtype(dtype).newbyteorder("<")
        size = storage.stat(uri).size if length is None else length * self.dtype.itemsize
        self._length = size // self.dtype.itemsize
        self._file = storage.open_seekable(uri, size=size)

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, key: slice) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError(f"{self.uri}: token files are read by contiguous slices, not {key!r}")
        start, stop, _ = key.indices(self._length)
        tokens = np.empty(max(0, stop - start), self.dtype)
        self._file.seek(start * self.dtype.itemsize)
        if self._file.readinto(memoryview(tokens).cast("B")) != tokens.nbytes:
            raise InputError(
                f"{self.uri}: ends before token {stop:,}; it was cut short or changed after it was written"
            )
        return tokens

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@dataclass(frozen=True)
class Shard:
    paths: ShardPaths
    sidecar: dict
    tokens: StoredTokens
    index: pa.Table


def read_shard(path: str | os.PathLike, verify: bool = False) -> Shard:
    """Open a finished shard of either format, local or on S3, from any of its files; `verify` checks the
    sidecar's sha256s. Tokens are read from the token file, boundaries and provenance from the index."""
    paths = ShardPaths.beside(path)
    if not storage.exists(paths.sidecar):
        raise FileNotFoundError(f"{paths.sidecar}: no sidecar, so the shard is missing or unfinished")
    with storage.open_binary(paths.sidecar) as f:
        sidecar = json.loads(f.read())
    if sidecar.get("format_version") != SHARD_FORMAT_VERSION:
        raise ValueError(
            f"{paths.sidecar}: shard format version {sidecar.get('format_version')}, this code reads "
            f"{SHARD_FORMAT_VERSION}; write the mix again"
        )
    paths = ShardPaths.beside(path, sidecar["format"])
    for file in paths.data_files:
        if not storage.exists(file):
            raise FileNotFoundError(f"{file}: missing, though its shard's sidecar is there")
    if verify:
        for file in paths.data_files:
            if storage.sha256(file) != sidecar_digest(sidecar, _name(file)):
                raise ValueError(f"{file}: sha256 differs from its sidecar")
    tokens = StoredTokens(paths.tokens, sidecar["dtype"])
    if len(tokens) != sidecar["tokens"]:
        raise ValueError(f"{paths.tokens}: {len(tokens):,} tokens, the sidecar says {sidecar['tokens']:,}")
    with storage.open_seekable(paths.index) as f:
        index = pq.read_table(f)
    return Shard(paths, sidecar, tokens, index)


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
        self.paths = [os.fspath(p) for p in paths]
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.sequence_length = sequence_length
        self.lengths = [storage.stat(p).size // self.dtype.itemsize for p in self.paths]
        counts = [length // sequence_length for length in self.lengths]
        self.offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"instance {index} is out of range for {len(self)} instances")
        file_index = int(np.searchsorted(self.offsets, index, side="right")) - 1
        start = (index - int(self.offsets[file_index])) * self.sequence_length
        with StoredTokens(self.paths[file_index], self.dtype, self.lengths[file_index]) as tokens:
            return tokens[start : start + self.sequence_length]


def fsl_instances(
    paths: Sequence[str | os.PathLike], dtype: str | np.dtype, sequence_length: int
) -> FslInstances:
    return FslInstances(paths, dtype, sequence_length)
