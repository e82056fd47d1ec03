"""The Decontaminate Beam stage on real web documents with GSM8K test items planted in some of them."""

import dataclasses
import json
import pickle

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that
from helpers_decontaminate import EVALS, embed, require_shared, rng_for, web_texts

from curation.document import Document
from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig
from filters.decontaminate.index import build_index
from filters.decontaminate.report import write_report
from filters.decontaminate.transforms import Decontaminate


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 real web documents; GSM8K test items 0-2 planted once each, item 5 planted in 6 documents."""
    require_shared()
    tests = [json.loads(line) for line in (EVALS / "gsm8k" / "test.jsonl").read_text().splitlines()[:10]]
    rng = rng_for("decontaminate-transform")
    texts = [t for t in web_texts() if len(t) > 2000][:60]
    planted = {0: 0, 1: 1, 2: 2, **{10 + k: 5 for k in range(6)}}
    docs = []
    for i, text in enumerate(texts):
        if i in planted:
            item = tests[planted[i]]
            text = embed(text, item["question"] + "\n" + item["answer"], rng)
        docs.append(Document(id=f"doc{i}", text=text, source="web"))
    cfg = DecontaminateConfig(
        evals=[
            EvalSetConfig(
                name="gsm8k", paths=[str(EVALS / "gsm8k" / "test.jsonl")], text_fields=["question", "answer"]
            )
        ]
    )
    index_path, _ = build_index(cfg, EVALS, tmp_path_factory.mktemp("index"))
    return docs, index_path, cfg


def _saver(path):
    # The runner calls a pickled copy of the matcher, so outputs travel back through a file.
    def save(actual):
        path.write_bytes(pickle.dumps(list(actual)))

    return save


def _run(docs, index_path, config, folder, batch_size=7):
    pipeline = BeamTestPipeline()
    batches = [docs[i : i + batch_size] for i in range(0, len(docs), batch_size)]
    out = pipeline | beam.Create(batches, reshuffle=False) | Decontaminate(config, index_path, str(folder / "work"))
    names = ("documents", "rejections", "edits", "matches")
    for name in names:
        assert_that(out[name], _saver(folder / f"{name}.pickle"), label=f"Collect{name.title()}")
    result = pipeline.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query(MetricsFilter())["counters"]}
    return {name: pickle.loads((folder / f"{name}.pickle").read_bytes()) for name in names}, counters


def _config(config, **overrides):
    return dataclasses.replace(config, **overrides)


def test_removes_spans_of_planted_items_and_ignores_the_common_one(corpus, tmp_path):
    docs, index_path, cfg = corpus
    out, counters = _run(docs, index_path, _config(cfg, max_ngram_doc_frequency=3), tmp_path)
    rows = sorted(out["rejections"], key=lambda r: r.doc_id)
    assert [(r.doc_id, r.reason, r.detail["item_id"]) for r in rows] == [
        ("doc0", "contaminated_span", "test.jsonl:0"),
        ("doc1", "contaminated_span", "test.jsonl:1"),
        ("doc2", "contaminated_span", "test.jsonl:2"),
    ], "item 5, in 6 documents (over the limit of 3), is no evidence"
    assert counters == {"contaminated_span": 3}
    assert sorted(k for k, _ in out["edits"]) == [("web", "doc0"), ("web", "doc1"), ("web", "doc2")]
    kept = sorted(d.id for batch in out["documents"] for d in batch)
    assert "doc0" not in kept and "doc0#part0" in kept and "doc5" in kept
    pieces = [d for batch in out["documents"] for d in batch if d.id.startswith("doc0#")]
    question = json.loads((EVALS / "gsm8k" / "test.jsonl").read_text().splitlines()[0])["question"]
    assert all(question[:60] not in p.text for p in pieces)

    summary = write_report(out["matches"], tmp_path, {"gsm8k": 1319})
    gsm8k = summary["benchmarks"]["gsm8k"]
    assert (gsm8k["items_found"], gsm8k["documents_affected"], gsm8k["items_indexed"]) == (3, 3, 1319)
    assert json.loads((tmp_path / "decontamination.json").read_text()) == summary
    assert "| gsm8k | 1,319 | 3 | 3 |" in (tmp_path / "decontamination.md").read_text()


def test_without_frequency_limit_every_planted_copy_is_dropped(corpus, tmp_path):
    docs, index_path, cfg = corpus
    config = _config(cfg, max_ngram_doc_frequency=None, action="drop_document")
    out, counters = _run(docs, index_path, config, tmp_path)
    assert counters == {"contaminated": 9}
    assert sorted(r.doc_id for r in out["rejections"]) == sorted(f"doc{i}" for i in (0, 1, 2, *range(10, 16)))
    assert sum(len(b) for b in out["documents"]) == len(docs) - 9
    assert out["edits"] == []


def test_output_does_not_depend_on_batching(corpus, tmp_path):
    docs, index_path, cfg = corpus
    config = _config(cfg, max_ngram_doc_frequency=3)
    (tmp_path / "small").mkdir()
    (tmp_path / "large").mkdir()
    small, _ = _run(docs, index_path, config, tmp_path / "small", batch_size=3)
    large, _ = _run(docs[::-1], index_path, config, tmp_path / "large", batch_size=20)
    for name in ("rejections", "edits"):
        assert sorted(map(repr, small[name])) == sorted(map(repr, large[name]))

    def texts(out):
        return sorted((d.id, d.text) for batch in out["documents"] for d in batch)

    assert texts(small) == texts(large)
