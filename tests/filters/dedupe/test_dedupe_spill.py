"""The work-folder side of dedupe: sketch files read back with the decisions so far, and band runs
read back shard by shard."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from filters.dedupe.buckets import band_rows
from filters.dedupe.config import DedupeConfig, MinHashConfig
from filters.dedupe.sketch import make_hasher, sketch_batch
from filters.dedupe.spill import (
    load_sketches,
    read_keyed_groups,
    read_run_shards,
    shard_of_key,
    shard_ranges,
    with_changes,
    write_band_run,
    write_keyed_run,
    write_sketches,
)
from tests.helpers_dedupe import cc_documents

CONFIG = DedupeConfig(minhash=MinHashConfig())


@pytest.fixture(scope="module")
def sketches():
    return sketch_batch(cc_documents(12), CONFIG, make_hasher(CONFIG))


def test_a_sketch_file_reads_back_without_removed_members_and_with_new_cluster_sizes(tmp_path, sketches):
    handle = write_sketches(str(tmp_path), sketches[0].node, sketches)
    assert load_sketches(handle) == sketches
    decided = with_changes(handle, {sketches[1].node: None, sketches[2].node: 3})
    decided = with_changes(decided, {sketches[4].node: None})
    back = load_sketches(decided)
    assert [s.node for s in back] == [s.node for i, s in enumerate(sketches) if i not in (1, 4)]
    assert back[1].represents == 3 and back[1].doc_id == sketches[2].doc_id
    assert load_sketches(handle) == sketches, "a handle's changes never rewrite the file"


def test_each_shard_of_a_band_run_holds_exactly_the_rows_of_its_band_keys(tmp_path, sketches):
    rows = band_rows(sketches, batch_key=7, scope="global")
    assert rows.shape == (len(sketches) * 14, 4)
    run = write_band_run(str(tmp_path), rows, shards=5)
    back = [np.frombuffer(blob, dtype=np.uint64).reshape(-1, 4) for blob in read_run_shards(run, 0, 5)]
    assert sum(len(b) for b in back) == len(rows)
    for shard, part in enumerate(back):
        assert np.all(part[:, 1] % 5 == shard)
    assert sorted(map(tuple, np.concatenate(back).tolist())) == sorted(map(tuple, rows.tolist()))
    assert write_band_run(str(tmp_path), rows, shards=5) == run, "a rewritten run keeps its name"


def test_a_truncated_band_run_is_an_error_not_fewer_buckets(tmp_path, sketches):
    uri, offsets = write_band_run(str(tmp_path), band_rows(sketches, 7, "global"), shards=2)
    with open(uri, "r+b") as f:
        f.truncate(offsets[1] + 8)
    with pytest.raises(RuntimeError, match="shorter than its index"):
        read_run_shards((uri, offsets), 1, 2)


def test_per_source_scope_gives_the_same_text_different_band_keys_in_different_sources(sketches):
    web = band_rows(sketches[:1], 0, "per_source")
    wiki = band_rows([sketches[0]._replace(keep=sketches[0].keep._replace(source="wiki"))], 0, "per_source")
    assert not set(web[:, 1].tolist()) & set(wiki[:, 1].tolist())
    assert np.array_equal(
        band_rows(sketches[:1], 0, "global")[:, 1], np.frombuffer(sketches[0].band_keys, np.uint64)
    )


def test_keyed_runs_gather_every_value_of_a_key_from_every_run_in_its_one_shard(tmp_path, sketches):
    records = [(s.text_digest, s.doc_id) for s in sketches] + [
        (("wiki", s.text_digest), s.doc_id) for s in sketches
    ]
    half = len(records) // 2
    runs = [write_keyed_run(str(tmp_path), part, shards=4) for part in (records[:half], records[half:])]
    runs.append(write_keyed_run(str(tmp_path), [(sketches[0].text_digest, "again")], shards=4))
    groups = [read_keyed_groups(runs, shard, shard + 1) for shard in range(4)]
    for shard, found in enumerate(groups):
        assert all(shard_of_key(key, 4) == shard for key in found)
    merged = {k: v for found in groups for k, v in found.items()}
    assert len(merged) == 2 * len(sketches)
    assert sorted(merged[sketches[0].text_digest]) == sorted([sketches[0].doc_id, "again"])
    assert merged[("wiki", sketches[3].text_digest)] == [sketches[3].doc_id]
    assert read_keyed_groups(runs, 0, 4) == merged, "a range of shards gathers what its shards do"


def test_shard_ranges_cover_every_shard_with_data_in_as_few_tasks_as_the_bytes_allow(tmp_path, sketches):
    records = [(s.text_digest, s.doc_id) for s in sketches]
    runs = [write_keyed_run(str(tmp_path), part, shards=16) for part in (records[:5], records[5:], [])]
    total = sum(offsets[-1] for _, offsets in runs)
    assert shard_ranges(runs, 16, task_bytes=total) == [(0, 16)]
    for task_bytes in (1, 200, total // 3):
        ranges = shard_ranges(runs, 16, task_bytes)
        assert ranges[0][0] == 0 and ranges[-1][1] == 16
        assert all(end == first for (_, end), (first, _) in itertools.pairwise(ranges)), "consecutive, no gap"
        assert len(ranges) <= 1 + total // task_bytes
        sizes = [sum(offsets[b] - offsets[a] for _, offsets in runs) for a, b in ranges]
        assert all(size >= task_bytes for size in sizes[:-1]) and sizes[-1] > 0
    # One task per shard with data: empty shards join their neighbours.
    with_data = {s for _, offsets in runs for s in range(16) if offsets[s + 1] > offsets[s]}
    assert len(shard_ranges(runs, 16, task_bytes=1)) == len(with_data)
    assert shard_ranges([runs[2]], 16, task_bytes=1) == [], "nothing to group, no task"
