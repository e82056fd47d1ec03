"""The mix and the end of a run keep the launcher's memory flat in corpus size (issue #12 item 2): the mix
plan, the ledger, the counts of stats.json, the audit index and the checksums are built on Beam's workers
(here two worker processes), and the launcher handles small records only. Its own Python allocations are
traced during the mix's plan and `finish_run` (the mix and the release)."""

from __future__ import annotations

import gzip

import orjson
import pyarrow.parquet as pq
import pytest
from helpers_scale import ABSTRACTS, end_of_run_memory, write_scale_manifest

from curation.audit import AuditIndex

TWO_WORKER_PROCESSES = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]
SMALL, LARGE = 1_000, 8_000


def _first_abstract_id() -> str:
    with gzip.open(ABSTRACTS) as f:
        return orjson.loads(f.readline())["id"]


def _run(folder, documents):
    result = end_of_run_memory(write_scale_manifest(folder, documents), TWO_WORKER_PROCESSES)
    root = folder / "out" / "scale" / f"1.0.{documents}"
    return result, root


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scale")
    small, _ = _run(folder / "small", SMALL)
    large, root = _run(folder / "large", LARGE)
    return small, large, root


def test_the_mix_plan_does_not_grow_the_launchers_memory_with_the_corpus(runs):
    small, large, _ = runs
    # Every kept document is mixed once: the plan really covered the corpus.
    assert (small["mixed_documents"], large["mixed_documents"]) == (small["kept"], large["kept"])
    # Planned in the launcher, as it was before (commit 23ebbef), the plan held every kept document's id,
    # token count and place, then the seeded order: its traced peak went from 2.2 MB to 3.8 MB for these
    # 3,500 more kept documents. Planned on the workers, the launcher runs the pipeline and reads back one
    # summary: 8.6 MB and 8.4 MB, whatever the corpus.
    assert large["plan_traced_peak_bytes"] < small["plan_traced_peak_bytes"] + 800_000, (small, large)


def test_the_end_of_a_run_does_not_grow_the_launchers_memory_with_the_corpus(runs):
    small, large, root = runs
    # The large run really wrote corpus-sized outputs: thousands of ledger rows and audit records.
    duplicates = (LARGE - 1_000) // 2
    assert (large["documents"], large["rejected"], large["kept"]) == (LARGE, duplicates, LARGE - duplicates)
    assert pq.ParquetFile(root / "ledger" / "rejections.parquet").metadata.num_rows == duplicates
    with open(root / "audit" / "records.jsonl", "rb") as records:
        assert sum(1 for _ in records) == LARGE
    with AuditIndex(str(root)) as index:
        assert index.document(f"{_first_abstract_id()}-c7", "papers")["status"] == "dropped"
    # Holding the rejections and the audit records in the launcher, as it did before, took ~1.6 KB per
    # document (about 11 MB more for these 7,000 more documents); streamed, the peak stays within a
    # generous 2 MB and 25 % of the small run's, whatever the corpus.
    assert large["traced_peak_bytes"] < small["traced_peak_bytes"] * 1.25 + 2_000_000, (small, large)


def test_decide_does_not_hold_the_corpus_in_the_local_runner(runs):
    small, large, _ = runs
    # The local runner runs in the launcher and holds every PCollection that crosses a stage boundary until
    # the pipeline ends. Decide used to pass it every kept document (waiting for the top-fraction cutoffs)
    # and every stage's per-document records (through Flattens): on main (4da37ff) its traced peak went from
    # 9.4 MB to 22.6 MB for these 7,000 more documents, 1.9 KB each. Now documents wait as files and records
    # go to run files from each stage, so the runner holds tens of bytes per document (measured: 10.3 MB,
    # then 9.8 MB); 7,000 more documents stay within a generous 4 MB (~570 B per added document).
    assert large["decide_traced_peak_bytes"] < small["decide_traced_peak_bytes"] + 4_000_000, (small, large)
