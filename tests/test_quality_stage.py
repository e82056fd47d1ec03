"""The quality stage in the pipeline: filters score once, decisions come from stored scores, rejected
documents leave with their reason, and counters use the same reason strings as the ledger."""

from __future__ import annotations

import collections

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to
from conftest import DEMO_DATA, TOKENIZER, write_manifest

from curation.pipeline import curate, prepare, run
from curation.stages.decide import DecideQuality
from filters.language import LanguageFilter
from mixes.manifest import load_manifest

WEB_FILTERS = [
    {"use": "language_v1", "languages": ["en"], "min_score": 0.65},
    {"use": "gopher_quality_v1"},
    {"use": "c4_quality_v1"},
]


def web_manifest(version: str = "1.0.0", min_words: int = 50, top_fraction: float | None = None) -> dict:
    filters = [dict(f) for f in WEB_FILTERS]
    filters[1]["min_words"] = min_words
    return {
        "name": "quality",
        "version": version,
        "seed": 3,
        "sources": [{"name": "web", "paths": [str(DEMO_DATA / "web" / "*.json*.gz")], "filters": filters}],
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 1_000_000},
    }


def ledger_reasons(root) -> collections.Counter:
    rows = pq.read_table(root / "ledger" / "rejections.parquet").to_pylist()
    return collections.Counter((r["filter"], r["reason"]) for r in rows if r["stage"] == "quality")


def test_changing_a_threshold_re_decides_from_stored_scores_without_calling_the_model(tmp_path, monkeypatch):
    calls = []
    original = LanguageFilter.score_batch

    def counting(self, views):
        calls.append(len(views))
        return original(self, views)

    monkeypatch.setattr(LanguageFilter, "score_batch", counting)
    # One worker runs in this process, so the counting method is the one the pipeline calls.
    first = run(load_manifest(write_manifest(tmp_path, web_manifest())), ["--direct_num_workers=1"], log=lambda _: None)
    scored = sum(calls)
    assert scored == first["sources"]["web"]["read"] - first["sources"]["web"]["quarantined"]
    logs: list[str] = []
    second = run(
        load_manifest(write_manifest(tmp_path, web_manifest("1.0.1", min_words=400), "stricter.yaml")),
        ["--direct_num_workers=1"],
        log=logs.append,
    )
    assert sum(calls) == scored, "a threshold change must not score any document again"
    assert any("4 already pooled" in line for line in logs)
    before = ledger_reasons(tmp_path / "out" / "quality" / "1.0.0")
    after = ledger_reasons(tmp_path / "out" / "quality" / "1.0.1")
    assert after[("gopher_quality_v1", "gopher_too_few_words")] > before[("gopher_quality_v1", "gopher_too_few_words")]
    assert second["sources"]["web"]["kept_documents"] < first["sources"]["web"]["kept_documents"]


def test_decide_quality_sends_rejections_out_with_reasons_and_counters(tmp_path):
    loaded = load_manifest(write_manifest(tmp_path, web_manifest()))
    ctx = prepare(loaded, ["--direct_num_workers=1"], log=lambda _: None)
    pools = curate(ctx)
    read = sum(p.read - p.quarantined for p in pools)
    pipeline = TestPipeline(argv=["--direct_num_workers=1", "--direct_running_mode=in_memory"])
    pools_by_ordinal = pipeline | beam.Create(list(enumerate(pools)))
    no_duplicates = pipeline | "NoDuplicates" >> beam.Create([])
    decided = {"pool": pools_by_ordinal, "duplicate": no_duplicates} | DecideQuality(ctx.sources, [p.input_uri for p in pools])
    kept_count = decided.kept | "CountKept" >> beam.Map(len) | "SumKept" >> beam.CombineGlobally(sum)
    totals = (
        (kept_count, decided.rejections | "CountRejected" >> beam.combiners.Count.Globally())
        | beam.Flatten()
        | "SumAll" >> beam.CombineGlobally(sum)
    )
    assert_that(totals, equal_to([read]), label="EveryDocumentKeptOrRejected")
    # Every document is located once and gets exactly one quality verdict record.
    verdicts = decided.said | "CountVerdicts" >> beam.combiners.Count.Globally()
    assert_that(verdicts, equal_to([read]), label="OneQualityVerdictEach")
    located = decided.located | "CountLocated" >> beam.combiners.Count.Globally()
    assert_that(located, equal_to([read]), label="EveryDocumentLocated")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {
        c.key.metric.name: c.committed
        for c in result.metrics().query(beam.metrics.MetricsFilter().with_namespace("quality"))["counters"]
    }
    assert counters["wrong_language"] > 100
    assert counters["documents_rejected"] == sum(v for k, v in counters.items() if k != "documents_rejected")
