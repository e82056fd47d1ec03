"""Decide with its scratch (dedupe's sketches and runs, the groupings through run files) on S3: the same
decision files as with the scratch on local disk, in a number of requests bounded as `filters/dedupe/spill.py`
states: no HEAD, at most 7 per batch of documents, and one PUT plus one GET per grouping task for each run."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from conftest import small_manifest, write_manifest

from curation import storage
from curation.batching import BATCH_DOCUMENTS
from curation.errors import InputError
from curation.pipeline import curate, prepare
from mixes.manifest import load_manifest
from tests.helpers_dedupe import decide_with_scratch

ALL_METHODS = {"exact": {}, "url": {}, "minhash": {"scope": "per_source"}, "paragraph": {}}


def test_decide_with_scratch_on_s3_gives_the_local_decisions_in_a_bounded_number_of_requests(
    tmp_path, s3_bucket, s3_endpoint
):
    ctx = prepare(
        load_manifest(write_manifest(tmp_path, small_manifest(tmp_path, dedupe=ALL_METHODS))),
        [],
        log=lambda _: None,
    )
    pools = curate(ctx)
    documents = sum(pool.read - pool.quarantined for pool in pools)
    # Worker processes reach the server through the pipeline options alone.
    workers = [
        "--direct_num_workers=2",
        "--direct_running_mode=multi_processing",
        "--s3_endpoint_url",
        s3_endpoint,
    ]
    local, none = decide_with_scratch(ctx, pools, str(tmp_path / "work"), workers)
    on_s3, requests = decide_with_scratch(ctx, pools, f"{s3_bucket}/_cache/work/decide", workers)

    assert on_s3 == local and any(name.startswith("verdicts/") for name in local)
    assert not none, "a local scratch sends no request"
    by_operation = Counter()
    for (_, operation), count in requests.items():
        by_operation[operation] += count
    assert set(by_operation) == {"PutObject", "GetObject"}, by_operation
    # The data is far under TASK_BYTES, so each grouping is one task: it reads each run once, if at all.
    groupings = {step.rsplit("/ReadGroups/", 1)[0] for step, _ in requests if "/ReadGroups/" in step}
    assert len(groupings) >= 8, groupings
    for grouping in groupings:
        written = sum(n for (step, op), n in requests.items() if step.startswith(f"{grouping}/WriteRuns"))
        read = sum(n for (step, op), n in requests.items() if step.startswith(f"{grouping}/ReadGroups/"))
        assert 0 < read <= written, (grouping, written, read)
    # The stated bound, with a wide margin: 7 per batch, and 2 per run with at most one run per grouping,
    # worker and 100 documents (the runner cuts bundles far coarser).
    batches = sum(math.ceil((pool.read - pool.quarantined) / BATCH_DOCUMENTS) for pool in pools)
    runs_at_most = len(groupings) * 2 * math.ceil(documents / 100)
    assert sum(by_operation.values()) <= 7 * batches + 2 * runs_at_most, by_operation
    assert sum(by_operation.values()) < documents / 5, "more than one request per 5 documents"
    # The scratch was on S3 (with decide's step markers), and goes by its prefix.
    scratch = storage.list_files(f"{s3_bucket}/_cache/work/decide/**")
    assert {uri.split("/")[6] for uri in scratch} == {"sketches", "runs", "progress"}
    storage.remove_tree(f"{s3_bucket}/_cache/work/decide")
    with pytest.raises(InputError, match="no input file matches"):
        storage.list_files(f"{s3_bucket}/**")
