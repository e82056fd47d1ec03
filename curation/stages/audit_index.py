"""Building the audit index (`audit/`, queried by curation/audit.py) on a pipeline's workers, in bounded
memory (issue #12: nothing that grows with the corpus runs in the launcher).

Tasks read the output's files in parallel (the ledgers, each published documents file, each pool, each
shard's index) and turn every row into a fragment keyed by the document it is about; fragments are sorted
into runs, and one task merges them, so a document's fragments arrive together and in key order. That task
assembles each record, writes records.jsonl as it goes, and gathers the (key, row) pairs of the lookup
arrays into sorted runs of its own, merged into the arrays at the end: it holds one run at a time, never the
corpus. The order of everything is a total order on the fragments, so the bytes are the same whatever the
worker count."""

from __future__ import annotations

import heapq
import io
import itertools
import operator
import tempfile
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import apache_beam as beam
import numpy as np
import orjson
import pyarrow.parquet as pq

from curation import storage
from curation.audit import (
    AUDIT_DIR,
    ID_KEYS,
    ID_ROWS,
    LOCATION_KEYS,
    LOCATION_ROWS,
    RECORD_OFFSETS,
    RECORDS,
    SHARD_ROWS,
    SHARD_STARTS,
    StoredArray,
    id_key,
    location_key,
    shard_name,
    source_free_id_key,
)
from curation.batching import batched
from curation.document import base_id
from curation.engine import SpreadOverWorkers, pipeline_options, run_pipeline
from curation.errors import InputError
from curation.layout import RunLayout
from curation.stages.sorted_runs import SpilledRows, WriteSortedRunsFn, run_rows
from curation.writers import iter_zstd_frames

# Fragments of one document, in the order they are applied to its record.
LEDGER, PIECE, POOL, PLACEMENT = range(4)
# Document records first (by source and id), then quarantined records.
_DOCUMENTS, _QUARANTINE = 0, 1
_LEDGER_BATCH_ROWS = 10_000
_COPY_BYTES = 1 << 20

Fragment = dict[str, Any]


def fragment_key(f: Fragment) -> tuple:
    return (*f["k"], *f["o"])


def _new_record(source: str, doc_id: str) -> dict[str, Any]:
    return {
        "kind": "document",
        "source": source,
        "id": doc_id,
        "status": "kept",
        "uri": None,
        "line": None,
        "offset": None,
        "url": None,
        "attributes": {},
        "decisions": [],
        "cluster": None,
        "pieces": [],
        "placements": [],
    }


def _provenance(doc: dict[str, Any]) -> dict[str, Any]:
    """What a record takes from the document it was read as."""
    prov = doc.get("provenance") or {}
    return {
        "uri": prov.get("uri"),
        "line": prov.get("line"),
        "offset": prov.get("offset"),
        "url": (doc.get("metadata") or {}).get("url"),
        "attributes": doc.get("attributes") or {},
    }


def _parquet_rows(uri: str) -> Iterator[dict[str, Any]]:
    with storage.open_seekable(uri) as f:
        for batch in pq.ParquetFile(f).iter_batches(batch_size=_LEDGER_BATCH_ROWS):
            yield from batch.to_pylist()


def _ledger_fragments(uri: str) -> Iterator[Fragment]:
    for n, row in enumerate(_parquet_rows(uri)):
        row["detail"] = orjson.loads(row["detail"]) if row["detail"] else None
        yield {"k": [_DOCUMENTS, row["source"], base_id(row["doc_id"])], "o": [LEDGER, n, 0], "v": row}


def _quarantine_fragments(uri: str) -> Iterator[Fragment]:
    for n, q in enumerate(_parquet_rows(uri)):
        # `or -1` as the index always sorted them: a first line (0) sorts with an unknown one.
        key = [_QUARANTINE, q["source"], q["uri"], q["line"] or -1, q["offset"] or -1, q["reason"]]
        yield {"k": key, "o": [n], "v": q}


def _document_lines(uri: str) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(where in the file, document) of each line of a published documents file. Where is the line number
    and, for .zst files, the compressed offset of the zstd frame holding the line and the frame's first
    line, so a query decompresses one frame rather than the file up to the line."""
    if uri.endswith(".zst"):
        line_number = 0
        with storage.open_binary(uri) as raw:
            for frame_offset, data in iter_zstd_frames(raw):
                first_line = line_number
                for line in data.splitlines():
                    yield {"line": line_number, "frame": [frame_offset, first_line]}, orjson.loads(line)
                    line_number += 1
        return
    with storage.open_decompressed(uri) as f:
        for line_number, line in enumerate(f):
            yield {"line": line_number}, orjson.loads(line)


def _piece_fragments(root: str, uri: str, index: int) -> Iterator[Fragment]:
    rel = storage.relative(uri, root)
    for where, doc in _document_lines(uri):
        piece = {"id": doc["id"], "document": rel, **where}
        v = {"piece": piece, "provenance": _provenance(doc)}
        yield {"k": [_DOCUMENTS, doc["source"], base_id(doc["id"])], "o": [PIECE, index, where["line"]], "v": v}


def _pool_fragments(uri: str, index: int) -> Iterator[Fragment]:
    # Keyed by the pooled id itself: a pool explains a dropped document of exactly that id.
    with storage.open_decompressed(uri) as f:
        for n, line in enumerate(f):
            doc = orjson.loads(line)
            yield {"k": [_DOCUMENTS, doc["source"], doc["id"]], "o": [POOL, index, n], "v": _provenance(doc)}


def _placement_fragments(folder: str, uri: str, index: int) -> Iterator[Fragment]:
    """A shard's placements; its token-start array is written here, in the shard's order."""
    name = shard_name(uri)
    with storage.open_seekable(uri) as f:
        table = pq.read_table(f, columns=["start", "end", "doc_id", "source", "repetition"]).to_pydict()
    _save_array(storage.join(folder, "shards", f"{name}.{SHARD_STARTS}"), np.array(table["start"], dtype=np.uint64))
    columns = zip(table["start"], table["end"], table["doc_id"], table["source"], table["repetition"])
    for n, (start, end, doc_id, source, repetition) in enumerate(columns):
        v = {"id": doc_id, "shard": name, "start": start, "end": end, "repetition": repetition}
        yield {"k": [_DOCUMENTS, source, base_id(doc_id)], "o": [PLACEMENT, index, n], "v": v}


class _FragmentsFn(beam.DoFn):
    def __init__(self, root: str):
        self._root = root

    def process(self, job: tuple[str, str, int]):
        kind, uri, index = job
        if kind == "ledger":
            yield from _ledger_fragments(uri)
        elif kind == "quarantine":
            yield from _quarantine_fragments(uri)
        elif kind == "documents":
            yield from _piece_fragments(self._root, uri, index)
        elif kind == "pool":
            yield from _pool_fragments(uri, index)
        else:
            yield from _placement_fragments(storage.join(self._root, AUDIT_DIR), uri, index)


def _document_record(source: str, doc_id: str, fragments: Iterable[Fragment]) -> dict[str, Any] | None:
    """The record of one document from its fragments in order, or None if only pools mention the id."""
    r: dict[str, Any] | None = None
    dropped = False
    for f in fragments:
        kind, v = f["o"][0], f["v"]
        if kind == POOL:
            if dropped:
                r.update(v)
            continue
        if r is None:
            r = _new_record(source, doc_id)
        if kind == LEDGER:
            detail = v["detail"] or {}
            r["decisions"].append({k: v[k] for k in ("stage", "filter", "reason", "score", "detail")})
            if "kept_id" in detail:
                r["cluster"] = {k: detail.get(k) for k in ("cluster_id", "cluster_size", "kept_id", "kept_source")}
            if not detail.get("span_only") and r["status"] == "kept":
                r["status"] = "dropped"
                r["uri"] = r["uri"] or v["uri"]
                dropped = True
        elif kind == PIECE:
            if not r["pieces"]:
                r.update(v["provenance"])
            r["pieces"].append(v["piece"])
            attrs = v["provenance"]["attributes"]
            if "dedupe/cluster_id" in attrs and r["cluster"] is None:
                r["cluster"] = {
                    "cluster_id": attrs["dedupe/cluster_id"],
                    "cluster_size": attrs.get("dedupe/cluster_size"),
                    "kept_id": r["id"],
                    "kept_source": r["source"],
                }
        else:
            r["placements"].append(v)
    return r


def _quarantine_record(q: dict[str, Any]) -> dict[str, Any]:
    return {
        "kind": "quarantine",
        "source": q["source"],
        "id": None,
        "status": "quarantined",
        "uri": q["uri"],
        "line": q["line"],
        "offset": q["offset"],
        "reason": q["reason"],
        "excerpt": q["excerpt"],
    }


def _records(fragments: Iterator[Fragment]) -> Iterator[tuple[dict[str, Any], list[Fragment]]]:
    """(record, its placement fragments) in index order."""
    for key, group in itertools.groupby(fragments, key=lambda f: f["k"]):
        if key[0] == _QUARANTINE:
            for f in group:
                yield _quarantine_record(f["v"]), []
            continue
        group = list(group)  # one document's fragments
        record = _document_record(key[1], key[2], group)
        if record is not None:
            yield record, [f for f in group if f["o"][0] == PLACEMENT]


def _npy_header(count: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<u8", "fortran_order": False, "shape": (count,)})
    return buffer.getvalue()


def _save_array(uri: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    with storage.atomic_write(uri) as f:
        f.write(buffer.getvalue())


def _write_sorted_pairs(folder: str, names: tuple[str, str], pairs: SpilledRows, count: int) -> None:
    """Pairs [key, order, row] merged by (key, order) into the arrays of keys and of rows, streaming."""
    keys_uri, rows_uri = (storage.join(folder, name) for name in names)
    with storage.atomic_write(keys_uri) as keys_out, storage.atomic_write(rows_uri) as rows_out:
        keys_out.write(_npy_header(count))
        rows_out.write(_npy_header(count))
        for batch in batched(pairs.merged(), _COPY_BYTES // 8):
            keys_out.write(np.array([k for k, _, _ in batch], dtype="<u8").tobytes())
            rows_out.write(np.array([r for _, _, r in batch], dtype="<u8").tobytes())


class _WriteIndexFn(beam.DoFn):
    def __init__(self, root: str, work_dir: str):
        self._root = root
        self._folder = storage.join(root, AUDIT_DIR)
        self._work_dir = work_dir

    def process(self, _, runs: list[tuple[str, str]]):
        # Listed here, as `audit_jobs` listed them: the shards are written before the index's jobs are made.
        shards = [shard_name(uri) for uri in shard_index_files(self._root)]
        merged = heapq.merge(*(run_rows(uri) for _, uri in sorted(runs)), key=fragment_key)
        pair_key = operator.itemgetter(0, 1)
        ids = SpilledRows(self._work_dir, "ids", pair_key)
        locations = SpilledRows(self._work_dir, "locations", pair_key)
        placements = SpilledRows(self._work_dir, "placements", pair_key)
        counts = {"ids": 0, "locations": 0}
        rows = 0
        with tempfile.TemporaryFile() as offsets, storage.atomic_write(storage.join(self._folder, RECORDS)) as out:
            end = 0
            offsets.write(np.uint64(0).tobytes())
            for record, placed in _records(merged):
                data = orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"
                out.write(data)
                end += len(data)
                offsets.write(np.uint64(end).tobytes())
                keys = []
                if record["kind"] == "document":
                    keys.append((ids, "ids", id_key(record["source"], record["id"])))
                    keys.append((ids, "ids", source_free_id_key(record["id"])))
                if record["uri"] is not None:
                    if record["line"] is not None:
                        keys.append((locations, "locations", location_key(record["uri"], line=record["line"])))
                    if record["offset"] is not None:
                        keys.append((locations, "locations", location_key(record["uri"], offset=record["offset"])))
                for spill, kind, key in keys:
                    spill.add([key, counts[kind], rows])
                    counts[kind] += 1
                for f in placed:
                    placements.add([f["o"][1], f["o"][2], rows])
                rows += 1
            offsets.seek(0)
            _copy_array(storage.join(self._folder, RECORD_OFFSETS), offsets, rows + 1)
        _write_sorted_pairs(self._folder, (ID_KEYS, ID_ROWS), ids, counts["ids"])
        _write_sorted_pairs(self._folder, (LOCATION_KEYS, LOCATION_ROWS), locations, counts["locations"])
        self._write_shard_rows(placements, shards)
        yield rows

    def _write_shard_rows(self, placements: SpilledRows, shards: list[str]) -> None:
        """Per shard, the record row of each placement in the shard's order (one shard held at a time)."""
        groups = itertools.groupby(placements.merged(), key=lambda p: p[0])
        current = next(groups, None)
        for index, name in enumerate(shards):
            rows: list[int] = []
            if current is not None and current[0] == index:
                rows = [row for _, _, row in current[1]]
                current = next(groups, None)
            _save_array(storage.join(self._folder, "shards", f"{name}.{SHARD_ROWS}"), np.array(rows, dtype=np.uint64))


def _copy_array(uri: str, data: BinaryIO, count: int) -> None:
    with storage.atomic_write(uri) as out:
        out.write(_npy_header(count))
        while chunk := data.read(_COPY_BYTES):
            out.write(chunk)


def _listed(pattern: str) -> list[str]:
    try:
        return storage.list_files(pattern)
    except InputError:
        return []


def audit_jobs(root: str, pool_uris: Iterable[str]) -> list[tuple[str, str, int]]:
    """The files the index is read from: the ledgers, each published documents file, each pool and each
    shard's index; listed once they are written."""
    ledger = storage.join(root, "ledger", "rejections.parquet")
    quarantine = storage.join(root, "ledger", "quarantine.parquet")
    jobs = [("ledger", uri, 0) for uri in (ledger,) if storage.exists(uri)]
    jobs += [("quarantine", uri, 0) for uri in (quarantine,) if storage.exists(uri)]
    jobs += [("documents", uri, i) for i, uri in enumerate(_listed(storage.join(root, "documents", "*", "part-*.jsonl*")))]
    jobs += [("pool", uri, i) for i, uri in enumerate(pool_uris)]
    jobs += [("shard", uri, i) for i, uri in enumerate(shard_index_files(root))]
    return jobs


def shard_index_files(root: str) -> list[str]:
    return _listed(storage.join(root, "shards", "part-*.index"))


def audit_work_dir(root: str) -> str:
    name, version = root.rstrip("/").rsplit("/", 2)[1:]
    return RunLayout.from_root(root).cached("audit", f"{name}-{version}")


class BuildAuditIndex(beam.PTransform):
    """`root/audit/` from a collection of `audit_jobs`; its output is the one number of records, there once
    the index is written. Its scratch, `audit_work_dir(root)`, is the caller's to remove."""

    def __init__(self, root: str):
        super().__init__()
        self._root = root

    def expand(self, jobs):
        work_dir = audit_work_dir(self._root)
        runs = (
            jobs
            | "Spread" >> SpreadOverWorkers()
            | "Fragments" >> beam.ParDo(_FragmentsFn(self._root))
            | "SortFragments" >> beam.ParDo(WriteSortedRunsFn(work_dir, "fragments", fragment_key))
        )
        index_fn = _WriteIndexFn(self._root, work_dir)
        return jobs.pipeline | "Start" >> beam.Create([None]) | "WriteIndex" >> beam.ParDo(index_fn, beam.pvalue.AsList(runs))


def build_audit_index(
    root: str, pool_uris: Iterable[str] = (), beam_args: list[str] = (), log_path: str | None = None
) -> int:
    """Write `root/audit/` on a pipeline's workers; returns the number of records. Same output bytes for the
    same output folder. Pools (the output's cache) supply provenance and scores of dropped documents."""
    jobs = audit_jobs(root, pool_uris)
    work_dir = audit_work_dir(root)
    storage.remove_tree(work_dir)
    try:
        run_pipeline(
            pipeline_options(list(beam_args), max(1, len(jobs))),
            lambda p: p | "ListFiles" >> beam.Create(jobs) | "AuditIndex" >> BuildAuditIndex(root),
            log_path=log_path,
        )
    finally:
        storage.remove_tree(work_dir)
    return len(StoredArray(storage.join(root, AUDIT_DIR, RECORD_OFFSETS))) - 1
