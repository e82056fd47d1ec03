"""LSH band buckets found by sorting packed rows, as in the sort-based bucket stage of datatrove's MinHash.

Each document contributes one row per band (band, band key, node, batch key), packed per shard of band
keys so a shuffle moves a few large arrays instead of one record per document and band; sorting a
shard turns every bucket into a run of equal (band, key), and each run is linked into candidate pairs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np

from filters.dedupe.config import Scope
from filters.dedupe.sketch import DocSketch

# Buckets up to this size are linked as cliques (at most 28 pairs), larger ones as star plus chain.
MAX_CLIQUE_BUCKET = 8
_COLUMNS = 4  # band, band key, node, batch key: uint64 each


def band_rows_by_shard(
    sketches: Iterable[DocSketch], batch_key: int, scope: Scope, shards: int
) -> dict[tuple[str, int], bytes]:
    """(source or "" for global scope, shard) -> packed rows of the signed sketches of one batch."""
    by_scope: dict[str, list[DocSketch]] = {}
    for s in sketches:
        if s.band_keys is not None:
            by_scope.setdefault(s.source if scope == "per_source" else "", []).append(s)
    out: dict[tuple[str, int], bytes] = {}
    for source, members in by_scope.items():
        keys = np.frombuffer(b"".join(s.band_keys for s in members), dtype=np.uint64)
        bands = len(keys) // len(members)
        rows = np.empty((len(keys), _COLUMNS), dtype=np.uint64)
        rows[:, 0] = np.tile(np.arange(bands, dtype=np.uint64), len(members))
        rows[:, 1] = keys
        rows[:, 2] = np.repeat(np.array([s.node for s in members], dtype=np.uint64), bands)
        rows[:, 3] = batch_key
        shard_of_row = keys % np.uint64(shards)
        order = np.argsort(shard_of_row, kind="stable")
        shard_ids, starts = np.unique(shard_of_row[order], return_index=True)
        for shard, part in zip(shard_ids.tolist(), np.split(rows[order], starts[1:])):
            out[(source, shard)] = part.tobytes()
    return out


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
