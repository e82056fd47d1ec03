"""LSH band buckets found by sorting packed rows, as in the sort-based bucket stage of datatrove's MinHash.

Each document contributes one row per band (band, band key, node, batch key). Rows are sorted into
shards of band keys and written in runs (see `spill`); sorting one shard's rows from every run turns each
bucket into a run of equal (band, key), and each run is linked into candidate pairs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import xxhash

from filters.dedupe.config import Scope
from filters.dedupe.sketch import DocSketch

# Buckets up to this size are linked as cliques (at most 28 pairs), larger ones as star plus chain.
MAX_CLIQUE_BUCKET = 8
_COLUMNS = 4  # band, band key, node, batch key: uint64 each
ROW_BYTES = _COLUMNS * 8


def band_rows(sketches: Iterable[DocSketch], batch_key: int, scope: Scope) -> np.ndarray:
    """(rows, 4) uint64 band rows of the signed sketches of one batch. Per-source scope salts each band key
    with the source's digest, so equal keys of different sources land in different buckets (a salted
    collision is as likely as any other 64-bit band-key collision)."""
    signed = [s for s in sketches if s.band_keys is not None]
    if not signed:
        return np.empty((0, _COLUMNS), dtype=np.uint64)
    keys = np.frombuffer(b"".join(s.band_keys for s in signed), dtype=np.uint64).copy()
    bands = len(keys) // len(signed)
    if scope == "per_source":
        salts = np.array(
            [xxhash.xxh3_64_intdigest(s.source.encode("utf-8", "surrogatepass")) for s in signed],
            dtype=np.uint64,
        )
        keys ^= np.repeat(salts, bands)
    rows = np.empty((len(keys), _COLUMNS), dtype=np.uint64)
    rows[:, 0] = np.tile(np.arange(bands, dtype=np.uint64), len(signed))
    rows[:, 1] = keys
    rows[:, 2] = np.repeat(np.array([s.node for s in signed], dtype=np.uint64), bands)
    rows[:, 3] = batch_key
    return rows


def sort_into_shards(rows: np.ndarray, shards: int) -> tuple[np.ndarray, list[int]]:
    """Rows ordered by shard of band key, and the row offset where each shard starts (shards + 1 values)."""
    shard_of_row = rows[:, 1] % np.uint64(shards)
    order = np.argsort(shard_of_row, kind="stable")
    offsets = np.searchsorted(shard_of_row[order], np.arange(shards + 1, dtype=np.uint64))
    return rows[order], offsets.tolist()


def bucket_pairs(packed: Iterable[bytes]) -> Iterator[tuple[tuple[int, int], tuple[int, int]]]:
    """((node, batch key), (node, batch key)) candidate pairs from one shard's packed rows."""
    rows = np.frombuffer(b"".join(packed), dtype=np.uint64).reshape(-1, _COLUMNS)
    if len(rows) < 2:
        return
    rows = rows[np.lexsort((rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]))]
    run_starts = np.flatnonzero(np.any(rows[1:, :2] != rows[:-1, :2], axis=1)) + 1
    starts = np.concatenate(([0], run_starts))
    ends = np.concatenate((run_starts, [len(rows)]))
    for start, end in zip(starts[ends - starts > 1].tolist(), ends[ends - starts > 1].tolist()):
        batch_of = {}
        for node, batch in rows[start:end, 2:].tolist():
            batch_of.setdefault(node, batch)
        for u, v in link_bucket(sorted(batch_of)):
            yield (u, batch_of[u]), (v, batch_of[v])


def link_bucket(members: list[int]) -> Iterator[tuple[int, int]]:
    """Every pair of a small bucket, so a pair that fails the Jaccard check cannot cut a third member
    off; a large bucket (boilerplate) is linked as a star plus a chain, so its edges stay linear."""
    if len(members) <= MAX_CLIQUE_BUCKET:
        yield from itertools.combinations(members, 2)
        return
    for i, v in enumerate(members[1:], start=1):
        yield members[0], v
        if i > 1:
            yield members[i - 1], v
