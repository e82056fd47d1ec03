"""Rows decide gathers from the whole corpus (the ledger's rejections, contamination matches, records
quarantined by decide) written to one sorted file without ever being held together: each bundle sorts what
it saw into a run file in the phase's scratch, and one task merges the runs into the final file, streaming,
holding one row per run. The order is a total order on the rows themselves, so the bytes never depend on
bundling, worker count or runner."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import apache_beam as beam
import orjson
import xxhash
import zstandard
from apache_beam.transforms.window import GlobalWindows

from curation import storage

# Rows a bundle sorts in memory before writing a run: tens of MB as Python objects, whatever the corpus.
RUN_ROWS = 1 << 16
_ZSTD_LEVEL = 3

Row = dict[str, Any]
SortKey = Callable[[Row], Any]


def canonical(row: Row) -> bytes:
    return orjson.dumps(row, option=orjson.OPT_SORT_KEYS)


class WriteSortedRunsFn(beam.DoFn):
    """Rows in, (kind, run file) out: one run per RUN_ROWS rows and one for the rest of each bundle.
    A run is named by its content, so a retried bundle rewrites the same file."""

    def __init__(
        self, work_dir: str, kind: str, key: SortKey, to_row: Callable[[Any], Row] | None = None, run_rows: int = RUN_ROWS
    ):
        self._work_dir = work_dir
        self._run_rows = run_rows
        self._kind = kind
        self._key = key
        self._to_row = to_row

    def start_bundle(self):
        self._rows: list[Row] = []

    def process(self, element):
        self._rows.append(self._to_row(element) if self._to_row else element)
        if len(self._rows) >= self._run_rows:
            yield self._flush()

    def finish_bundle(self):
        if self._rows:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> tuple[str, str]:
        rows, self._rows = self._rows, []
        return self._kind, write_run(self._work_dir, self._kind, rows, self._key)


def write_run(work_dir: str, kind: str, rows: list[Row], key: SortKey) -> str:
    """`rows` sorted by `key` into a run file under `work_dir`, named by its content; returns its URI."""
    data = b"".join(canonical(r) + b"\n" for r in sorted(rows, key=key))
    uri = storage.join(work_dir, "sorted", kind, f"{xxhash.xxh3_128_hexdigest(data)}.jsonl.zst")
    with storage.atomic_write(uri) as f:
        f.write(zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data))
    return uri


def run_rows(uri: str) -> Iterator[Row]:
    with storage.open_decompressed(uri) as f:
        for line in f:
            yield orjson.loads(line)


def write_merged(uri: str, run_uris: Iterable[str], key: SortKey) -> int:
    """Merge sorted runs into one zstd JSON-lines file at `uri`; returns the number of rows."""
    merged = heapq.merge(*(run_rows(u) for u in sorted(run_uris)), key=key)
    count = 0
    with storage.atomic_write(uri) as f, zstandard.ZstdCompressor(level=_ZSTD_LEVEL).stream_writer(f, closefd=False) as z:
        for row in merged:
            z.write(canonical(row) + b"\n")
            count += 1
    return count


class SpilledRows:
    """Rows one task gathers, kept as sorted runs of `run_rows` in `work_dir` and read back merged in key
    order: the task holds one run, whatever the number of rows."""

    def __init__(self, work_dir: str, kind: str, key: SortKey, run_rows: int = RUN_ROWS):
        self._work_dir, self._kind, self._key, self._run_rows = work_dir, kind, key, run_rows
        self._rows: list[Row] = []
        self._runs: list[str] = []

    def add(self, row: Row) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._run_rows:
            self._runs.append(write_run(self._work_dir, self._kind, self._rows, self._key))
            self._rows = []

    def merged(self) -> Iterator[Row]:
        """Every row added, in key order (rows of equal key in the order they were added)."""
        runs = [run_rows(uri) for uri in self._runs]
        return heapq.merge(*runs, iter(sorted(self._rows, key=self._key)), key=self._key)
