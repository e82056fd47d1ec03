"""Document and ledger writers: Dolma-style JSONL (.zst/.gz) or Parquet, rolled into numbered files of a
target size, each written through `storage.atomic_write` so a failed run leaves no complete-looking file.

Output bytes depend only on the rows and their order (fixed compression levels, no timestamps in gzip
headers), so the same input gives byte-identical files.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any, BinaryIO, Literal, Self

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard

from curation import storage
from curation.batching import batched

DocumentFormat = Literal["jsonl.zst", "jsonl.gz", "parquet"]

ZSTD_LEVEL = 3
# JSONL.zst documents are written as independent zstd frames of this many documents (still one valid .zst
# file), so one document is read back by decompressing a single frame: what makes `audit --text` fast.
ZSTD_FRAME_DOCUMENTS = 256
_READ_CHUNK_BYTES = 1 << 20
GZIP_LEVEL = 6
_PARQUET_ROWS_PER_GROUP = 2048
# Row groups are also cut by text size, so a file can roll near its target instead of a whole group late.
_PARQUET_MAX_GROUP_TEXT_CHARS = 64 * 1024 * 1024
_LEDGER_ROWS_PER_BATCH = 10_000

# Nested fields are JSON strings, so a schema never depends on which metadata keys documents carry.
DOCUMENT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("text", pa.string()),
        ("source", pa.string()),
        ("added", pa.string()),
        ("created", pa.string()),
        ("metadata", pa.string()),
        ("attributes", pa.string()),
        ("provenance", pa.string()),
    ]
)
JSON_STRING_FIELDS = ("metadata", "attributes", "provenance")


class _CountingWriter:
    """Counts the bytes that reach the file, to roll output at its on-disk size."""

    def __init__(self, raw: BinaryIO):
        self._raw = raw
        self.bytes_written = 0

    def write(self, data: Any) -> int:
        self._raw.write(data)
        self.bytes_written += len(data)
        return len(data)

    def flush(self) -> None:
        self._raw.flush()

    @property
    def closed(self) -> bool:
        return False


def _compressing_writer(raw: Any, codec: str | None) -> Any:
    if codec == "zst":
        return zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw, closefd=False)
    if codec == "gz":
        return gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0, filename="")
    return None


class DocumentWriter:
    """Writes document dicts to `{prefix}-00000.{fmt}`, `-00001`, ..., starting a new file once the
    current one reaches `target_bytes` (compressed size)."""

    def __init__(self, prefix_uri: str, fmt: DocumentFormat, target_bytes: int):
        if fmt not in ("jsonl.zst", "jsonl.gz", "parquet"):
            raise ValueError(f"unknown document format {fmt!r}; use jsonl.zst, jsonl.gz or parquet")
        self._prefix, self._fmt, self._target_bytes = prefix_uri, fmt, target_bytes
        self._files: list[str] = []
        self._file_stack: contextlib.ExitStack | None = None
        self._current_uri = ""
        self._counter: _CountingWriter | None = None
        self._encoder: Any = None
        self._pending_rows: list[dict[str, Any]] = []
        self._pending_text_chars = 0
        self._group_text_chars = max(1, min(target_bytes // 4, _PARQUET_MAX_GROUP_TEXT_CHARS))

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort(exc_type, exc, tb)

    def write(self, doc: dict[str, Any]) -> None:
        if self._file_stack is None:
            self._open_next_file()
        if self._fmt == "parquet":
            self._pending_rows.append(doc)
            self._pending_text_chars += len(doc.get("text") or "")
            if (
                len(self._pending_rows) >= _PARQUET_ROWS_PER_GROUP
                or self._pending_text_chars >= self._group_text_chars
            ):
                self._flush_row_group()
        else:
            self._encoder.write(orjson.dumps(doc) + b"\n")
            self._documents_in_file += 1
            if self._fmt == "jsonl.zst" and self._documents_in_file % ZSTD_FRAME_DOCUMENTS == 0:
                self._encoder.flush(zstandard.FLUSH_FRAME)
        if self._counter.bytes_written >= self._target_bytes:
            self._finish_file()

    def close(self) -> list[str]:
        """Finishes the open file and returns every file written, in order."""
        if self._file_stack is not None:
            self._finish_file()
        return list(self._files)

    def abort(self, *exc_info: Any) -> None:
        """Drops the file being written (its temporary name or multipart upload); finished files stay."""
        if self._file_stack is not None:
            stack, self._file_stack = self._file_stack, None
            self._pending_rows = []
            self._pending_text_chars = 0
            stack.__exit__(*(exc_info or (RuntimeError, RuntimeError("writer aborted"), None)))

    def _open_next_file(self) -> None:
        uri = f"{self._prefix}-{len(self._files):05d}.{self._fmt}"
        stack = contextlib.ExitStack()
        raw = stack.enter_context(storage.atomic_write(uri))
        self._counter = _CountingWriter(raw)
        if self._fmt == "parquet":
            self._encoder = pq.ParquetWriter(self._counter, DOCUMENT_SCHEMA, compression="zstd")
        else:
            self._encoder = _compressing_writer(self._counter, self._fmt.rsplit(".", 1)[1])
        self._file_stack = stack
        self._current_uri = uri
        self._documents_in_file = 0

    def _flush_row_group(self) -> None:
        rows = [_document_row(d) for d in self._pending_rows]
        self._encoder.write_table(pa.Table.from_pylist(rows, schema=DOCUMENT_SCHEMA))
        self._pending_rows = []
        self._pending_text_chars = 0

    def _finish_file(self) -> None:
        if self._fmt == "parquet" and self._pending_rows:
            self._flush_row_group()
        self._encoder.close()
        stack, self._file_stack = self._file_stack, None
        stack.close()
        self._files.append(self._current_uri)


def _document_row(doc: dict[str, Any]) -> dict[str, Any]:
    row = {name: doc.get(name) for name in DOCUMENT_SCHEMA.names}
    for name in JSON_STRING_FIELDS:
        row[name] = orjson.dumps(row[name] or {}).decode()
    return row


def read_documents(uri: str) -> Iterator[dict[str, Any]]:
    """The documents of a file DocumentWriter wrote, JSONL (any compression) or Parquet, as dicts."""
    if uri.endswith(".parquet"):
        with storage.open_seekable(uri) as f:
            for batch in pq.ParquetFile(f).iter_batches():
                for row in batch.to_pylist():
                    yield row | {name: orjson.loads(row[name]) for name in JSON_STRING_FIELDS}
        return
    with storage.open_decompressed(uri) as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


def iter_zstd_frames(raw: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """(compressed offset, decompressed bytes) of each frame of a .zst stream, in order."""
    pending = b""
    position = 0
    while True:
        if not pending:
            pending = raw.read(_READ_CHUNK_BYTES)
            if not pending:
                return
        start = position
        decompressor = zstandard.ZstdDecompressor().decompressobj()
        parts = []
        while True:
            parts.append(decompressor.decompress(pending))
            if decompressor.eof:
                position += len(pending) - len(decompressor.unused_data)
                pending = decompressor.unused_data
                break
            position += len(pending)
            pending = raw.read(_READ_CHUNK_BYTES)
            if not pending:
                raise zstandard.ZstdError(f"truncated zstd frame starting at byte {start}")
        yield start, b"".join(parts)


def read_zstd_frame(uri: str, offset: int) -> bytes:
    """The decompressed bytes of the one frame starting at `offset` of a .zst file."""
    with storage.open_seekable(uri) as raw:
        raw.seek(offset)
        return next(iter_zstd_frames(raw))[1]


def write_jsonl(uri: str, rows: Iterable[dict[str, Any]]) -> None:
    """One JSON object a line, compressed by the extension (.zst, .gz or plain), written atomically."""
    with storage.atomic_write(uri) as raw:
        encoder = _compressing_writer(raw, storage.compression_of(uri))
        target = encoder or raw
        for row in rows:
            target.write(orjson.dumps(row) + b"\n")
        if encoder is not None:
            encoder.close()


def write_parquet_rows(uri: str, rows: Iterable[dict[str, Any]], schema: pa.Schema | None = None) -> None:
    """Rows as a Parquet file written in batches; the schema is inferred from the first batch when not given."""
    with storage.atomic_write(uri) as raw:
        writer: pq.ParquetWriter | None = None
        for batch in batched(rows, _LEDGER_ROWS_PER_BATCH):
            table = pa.Table.from_pylist(batch, schema=schema)
            if writer is None:
                schema = table.schema
                writer = pq.ParquetWriter(raw, schema, compression="zstd")
            writer.write_table(table)
        if writer is None:
            writer = pq.ParquetWriter(raw, schema or pa.schema([]), compression="zstd")
        writer.close()

