"""Bulky per-document dedup data kept in a work folder, so the runner's shuffles carry only small records.

Beam's DirectRunner holds every shuffled PCollection in memory and copies a stage's whole input several
times while handing it to a worker; shuffling the sketches (a few hundred bytes to a few KB per document)
and the band rows (32 bytes per band) made peak memory several times their size. So each batch's sketches
are written once to a file and travel as a handle, and band rows are written in sorted runs that each
bucket shard reads its slice of. What Beam shuffles then grows with the duplicates found (candidate
routes, pairs, decisions), plus one handle per batch. Any runner whose workers share the folder (one
machine's disk, or S3 for a cluster) runs the same graph.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import xxhash

from curation import storage
from filters.dedupe.buckets import ROW_BYTES, sort_into_shards
from filters.dedupe.sketch import DocSketch

# (batch key, sketch file, changes): changes map a node to the count of documents it now stands for, or
# to None once it is removed, so deciding never rewrites the file. Plain tuple and dict: Beam's fast coder.
SketchHandle = tuple[int, str, dict[int, Any]]
# (run file, row offset where each shard starts, shards + 1 values)
BandRun = tuple[str, list[int]]

# Band rows gathered before a run is sorted and written: 4 MB of rows (the writer holds about three times
# that while sorting), fixed whatever the corpus size; a million documents at 14 bands make ~110 runs.
RUN_ROWS = 1 << 17


def write_sketches(work_dir: str, batch_key: int, sketches: list[DocSketch]) -> SketchHandle:
    """Named by batch key and member nodes, so a retried bundle rewrites the same file."""
    nodes = np.array([s.node for s in sketches], dtype=np.uint64).tobytes()
    uri = storage.join(work_dir, "sketches", f"{batch_key:016x}-{xxhash.xxh3_64_hexdigest(nodes)}.pkl")
    with storage.atomic_write(uri) as f:
        f.write(pickle.dumps(sketches, protocol=pickle.HIGHEST_PROTOCOL))
    return batch_key, uri, {}


def load_sketches(handle: SketchHandle) -> list[DocSketch]:
    """The batch's surviving sketches, each standing for as many documents as the decisions so far say."""
    _, uri, changes = handle
    with storage.open_binary(uri) as f:
        sketches: list[DocSketch] = pickle.loads(f.read())
    if not changes:
        return sketches
    return [
        s if s.node not in changes else s._replace(represents=changes[s.node])
        for s in sketches
        if changes.get(s.node, 0) is not None
    ]


def with_changes(handle: SketchHandle, decided: dict[int, Any]) -> SketchHandle:
    batch_key, uri, changes = handle
    return batch_key, uri, {**changes, **decided}


def write_band_run(work_dir: str, rows: np.ndarray, shards: int) -> BandRun:
    """One sorted run; named by its content, so a retried bundle rewrites the same file."""
    ordered, offsets = sort_into_shards(rows, shards)
    data = memoryview(ordered).cast("B")
    uri = storage.join(work_dir, "bands", f"{xxhash.xxh3_128_hexdigest(data)}.rows")
    with storage.atomic_write(uri) as f:
        f.write(data)
    return uri, offsets


def read_band_shard(run: BandRun, shard: int) -> bytes:
    uri, offsets = run
    start, end = offsets[shard] * ROW_BYTES, offsets[shard + 1] * ROW_BYTES
    if start == end:
        return b""
    with storage.open_seekable(uri) as f:
        f.seek(start)
        data = f.read(end - start)
    if len(data) != end - start:
        raise RuntimeError(
            f"band run {uri} is shorter than its index says ({len(data)} of {end - start} bytes)"
        )
    return data
