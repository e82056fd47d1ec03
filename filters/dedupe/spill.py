"""Bulky per-document dedup data kept in a work folder, so the runner's shuffles carry only small records.

Beam's DirectRunner holds every shuffled PCollection in memory and copies a stage's whole input several
times while handing it to a worker; shuffling the sketches (a few hundred bytes to a few KB per document),
the band rows (32 bytes per band) or one keyed record per document and paragraph made peak memory several
times their size. So each batch's sketches are written once to a file and travel as a handle, and every
record dedupe groups (band rows; exact, URL and paragraph keys; candidates' routes, pair halves, cluster
members; decisions) is written in runs split into shards of keys, which grouping tasks read back, each a
range of consecutive shards, and group: the external-sort shuffle of datatrove's MinHash stages, inside the
Beam graph. Beam itself then shuffles only the connected-component rounds (integer edges), the count of
verified pairs per candidate (integers, combined before the shuffle) and the list of runs. Any runner
whose workers share the folder (one machine's disk, or S3 for a cluster) runs the same graph.

Requests to object storage are bounded. A batch of documents costs one PUT for its sketch file and one GET
each time a step reads it back (at most six). A run costs one PUT, then one ranged GET per grouping task
that finds records in it, and no HEAD, as its handle carries its layout. A grouping has at most
1 + (bytes of its runs) / TASK_BYTES tasks (and at most its shard count), and writes a run per RUN_ROWS or
RUN_RECORDS and per bundle. So dedupe costs at most 7 requests per batch plus (1 + tasks) per run:
linear in documents, with a fixed cost per run (tests/filters/dedupe/test_dedupe_s3.py measures it).
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterable
from typing import Any

import numpy as np
import xxhash

from curation import storage
from filters.dedupe.buckets import ROW_BYTES, sort_into_shards
from filters.dedupe.sketch import DocSketch

# (batch key, sketch file, changes): changes map a node to the count of documents it now stands for, or
# to None once it is removed, so deciding never rewrites the file. Plain tuple and dict: Beam's fast coder.
SketchHandle = tuple[int, str, dict[int, Any]]
# (run file, byte offset where each shard starts, shards + 1 values)
Run = tuple[str, list[int]]

# Band rows gathered before a run is sorted and written: 4 MB of rows (the writer holds about three times
# that while sorting), fixed whatever the corpus size; a million documents at 14 bands make ~110 runs.
RUN_ROWS = 1 << 17
# Keyed records gathered before a run is written: ~15 MB as Python objects for exact, URL and paragraph
# keys; more when records carry shingles (candidate pairs).
RUN_RECORDS = 1 << 16
# Shards of keys in a run file. A grouping task reads a range of consecutive shards, one byte range of each
# run, so shards only set how finely the tasks can be cut; what each group holds never depends on them.
GROUP_SHARDS = 256
# Bytes of runs a grouping task gathers before the next task starts (Python objects take a few times more):
# the number of tasks, hence of reads per run, grows with the data, not with a fixed shard count.
TASK_BYTES = 32 << 20


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


def write_run(work_dir: str, blobs: list) -> Run:
    """One run file: a blob per shard, one after the other. Named by its content, so a retried bundle
    rewrites the same file."""
    hasher = xxhash.xxh3_128()
    offsets = [0]
    for blob in blobs:
        hasher.update(blob)
        offsets.append(offsets[-1] + len(blob))
    uri = storage.join(work_dir, "runs", f"{hasher.hexdigest()}.run")
    with storage.atomic_write(uri) as f:
        for blob in blobs:
            f.write(blob)
    return uri, offsets


def shard_ranges(runs: Iterable[Run], shards: int, task_bytes: int) -> list[tuple[int, int]]:
    """Consecutive shard ranges [first, end) covering every shard that holds data, each closed once its
    shards hold `task_bytes` of all runs together: at most 1 + (bytes in the runs) / task_bytes ranges and
    at most `shards`. A run costs a grouping one read per range it has data in."""
    sizes = np.zeros(shards, dtype=np.int64)
    for _, offsets in runs:
        sizes += np.diff(np.asarray(offsets, dtype=np.int64))
    ranges, first, gathered = [], 0, 0
    for shard, size in enumerate(sizes.tolist()):
        gathered += size
        if gathered >= task_bytes:
            ranges.append((first, shard + 1))
            first, gathered = shard + 1, 0
    if gathered:
        ranges.append((first, shards))
    return ranges


def read_run_shards(run: Run, first: int, end: int) -> list[bytes]:
    """The blobs of shards [first, end) of one run, read in one request (none when they are all empty)."""
    uri, offsets = run
    start, stop = offsets[first], offsets[end]
    if start == stop:
        return [b""] * (end - first)
    data = storage.read_range(uri, start, stop - start)
    if len(data) != stop - start:
        raise RuntimeError(f"run {uri} is shorter than its index says ({len(data)} of {stop - start} bytes)")
    return [data[a - start : b - start] for a, b in itertools.pairwise(offsets[first : end + 1])]


def write_band_run(work_dir: str, rows: np.ndarray, shards: int) -> Run:
    """Band rows ordered by shard of band key; each shard's blob is its packed rows."""
    ordered, starts = sort_into_shards(rows, shards)
    flat = ordered.reshape(-1).view(np.uint8)
    return write_run(work_dir, [flat[a * ROW_BYTES : b * ROW_BYTES] for a, b in itertools.pairwise(starts)])


def write_keyed_run(work_dir: str, records: Iterable[tuple[Any, Any]], shards: int) -> Run:
    """(key, value) records, each shard's blob the pickled list of the records whose key falls in it, or
    nothing when none does, so a grouping skips the run without a request."""
    per_shard: list[list] = [[] for _ in range(shards)]
    for record in records:
        per_shard[shard_of_key(record[0], shards)].append(record)
    return write_run(
        work_dir, [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) if r else b"" for r in per_shard]
    )


def read_keyed_groups(runs: Iterable[Run], first: int, end: int) -> dict[Any, list]:
    """Every value of every key in shards [first, end), gathered from all runs."""
    groups: dict[Any, list] = {}
    for run in runs:
        for blob in read_run_shards(run, first, end):
            for key, value in pickle.loads(blob) if blob else ():
                groups.setdefault(key, []).append(value)
    return groups


def shard_of_key(key: Any, shards: int) -> int:
    """Stable across processes (Python's own str/bytes hash is salted per process). Keys are bytes, str,
    int or tuples of them."""
    return xxhash.xxh3_64_intdigest(_key_bytes(key)) % shards


def _key_bytes(key: Any) -> bytes:
    if isinstance(key, bytes):
        return key
    if isinstance(key, str):
        return key.encode("utf-8", "surrogatepass")
    if isinstance(key, int):
        return key.to_bytes(16, "little", signed=True)
    if isinstance(key, tuple):
        return b"\x00".join(_key_bytes(k) for k in key)
    raise TypeError(f"cannot shard a key of type {type(key).__name__}")
