"""`Deduplicate` on the DirectRunner over real Common Crawl documents with planted copies."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from curation.document import Document
from filters.dedupe import transforms
from filters.dedupe.config import (
    DedupeConfig,
    ExactDedupeConfig,
    MinHashConfig,
    ParagraphDedupeConfig,
    UrlDedupeConfig,
)
from filters.dedupe.paragraphs import apply_paragraph_edits
from filters.dedupe.transforms import FindConnectedComponents
from tests.helpers_dedupe import cc_documents, run_dedupe


def _copy(
    doc: Document, doc_id: str, source: str | None = None, text: str | None = None, url: str | None = None
):
    return Document(doc_id, doc.text if text is None else text, source or doc.source, metadata={"url": url})


def _edited(text: str, every: int) -> str:
    words = text.split(" ")
    return " ".join("EDITED" if i % every == 0 else w for i, w in enumerate(words))


def _removed(result: dict, reason: str) -> dict:
    return {(r["source"], r["doc_id"]): r for r in result["rejections"] if r["reason"] == reason}


def test_exact_copies_are_removed_and_the_priority_source_is_kept(tmp_path):
    docs = cc_documents(20)
    original = docs[3]
    planted = [
        _copy(original, "shouty", text=original.text.upper() + " !!!"),
        _copy(original, original.id, source="wiki"),
    ]
    config = DedupeConfig(priority=["wiki"], exact=ExactDedupeConfig())
    result = run_dedupe(docs + planted, config, tmp_path)
    removed = _removed(result, "duplicate_exact")
    assert set(removed) == {("web", original.id), ("web", "shouty")}
    row = removed[("web", "shouty")]
    assert row["filter"] == "exact_dedupe_v1" and row["stage"] == "dedupe" and row["score"] is None
    assert row["detail"]["kept_id"] == original.id and row["detail"]["kept_source"] == "wiki"
    assert row["detail"]["cluster_size"] == 3
    assert result["clusters"][("wiki", original.id)]["cluster_size"] == 3
    assert result["clusters"][("wiki", original.id)]["cluster_id"] == row["detail"]["cluster_id"]
    assert len(result["clusters"]) == len(docs)


def test_per_source_scope_keeps_one_copy_in_each_source(tmp_path):
    docs = cc_documents(10)
    planted = [_copy(docs[0], docs[0].id, source="wiki"), _copy(docs[0], "again", source="wiki")]
    config = DedupeConfig(exact=ExactDedupeConfig(scope="per_source"))
    result = run_dedupe(docs + planted, config, tmp_path)
    # Same text, same hash: the smaller doc id ("again") is kept inside "wiki"; "web" keeps its own.
    assert set(_removed(result, "duplicate_exact")) == {("wiki", docs[0].id)}


def test_same_page_under_another_url_spelling_is_removed(tmp_path):
    docs = cc_documents(10)
    url = docs[2].metadata["url"]
    planted = _copy(
        docs[4], "mirror", text=docs[4].text + " different", url=url.replace("://", "://www.") + "#top"
    )
    result = run_dedupe(docs + [planted], DedupeConfig(url=UrlDedupeConfig()), tmp_path)
    removed = _removed(result, "duplicate_url")
    assert len(removed) == 1
    (row,) = removed.values()
    assert {row["doc_id"], row["detail"]["kept_id"]} == {docs[2].id, "mirror"}


def test_near_duplicates_are_removed_with_their_jaccard_and_distant_edits_are_kept(tmp_path):
    docs = cc_documents(40)
    close = _copy(docs[5], "close", text=_edited(docs[5].text, 60))
    distant = _copy(docs[6], "distant", text=_edited(docs[6].text, 4))
    result = run_dedupe(docs + [close, distant], DedupeConfig(minhash=MinHashConfig()), tmp_path)
    removed = _removed(result, "near_duplicate")
    pair = {("web", docs[5].id), ("web", "close")}
    assert len(pair & set(removed)) == 1
    (row,) = [removed[k] for k in pair & set(removed)]
    assert row["filter"] == "minhash_v1" and 0.8 <= row["score"] < 1.0
    kept = (pair - set(removed)).pop()
    assert result["clusters"][kept] == {"cluster_id": row["detail"]["cluster_id"], "cluster_size": 2}
    assert ("web", "distant") not in removed and ("web", docs[6].id) not in removed


def test_a_paragraph_repeated_across_documents_survives_exactly_once(tmp_path):
    docs = cc_documents(6)
    boiler = "Subscribe to our newsletter to receive the latest stories every single morning."
    first = _copy(docs[0], "first", text=docs[0].text + "\n" + boiler)
    second = _copy(docs[1], "second", text=boiler + "\n" + docs[1].text + "\n" + boiler)
    config = DedupeConfig(paragraph=ParagraphDedupeConfig(min_paragraph_chars=40))
    result = run_dedupe([first, second], config, tmp_path)
    edits = result["paragraph_edits"]
    cleaned = [apply_paragraph_edits(d.text, edits.get(("web", d.id), [])) for d in (first, second)]
    assert sum(c.count(boiler) for c in cleaned) == 1
    assert docs[0].text in cleaned[0] and docs[1].text in cleaned[1]
    for key, spans in edits.items():
        (row,) = [r for r in result["span_rejections"] if (r["source"], r["doc_id"]) == key]
        assert row["reason"] == "duplicate_paragraph" and [tuple(s) for s in row["detail"]["spans"]] == spans


def test_a_document_repeating_its_own_paragraph_keeps_the_first_occurrence(tmp_path):
    docs = cc_documents(1)
    line = "This exact sentence is long enough to count as a paragraph for dedup."
    doc = _copy(docs[0], "self", text=f"{line}\n{docs[0].text}\n{line}")
    result = run_dedupe(
        [doc], DedupeConfig(paragraph=ParagraphDedupeConfig(min_paragraph_chars=40)), tmp_path
    )
    assert apply_paragraph_edits(doc.text, result["paragraph_edits"][("web", "self")]).count(line) == 1
    assert apply_paragraph_edits(doc.text, result["paragraph_edits"][("web", "self")]).startswith(line)


def test_components_are_right_even_when_the_rounds_stop_before_the_fixed_point():
    path = [(i, i + 1) for i in range(40)] + [(100, 101)]
    expected = [(i, 0) for i in range(41)] + [(100, 100), (101, 100)]
    with BeamTestPipeline() as p:
        labels = p | beam.Create(path) | FindConnectedComponents(rounds=1)
        assert_that(labels, equal_to(expected))


def test_kept_sets_and_cluster_ids_are_identical_for_one_and_two_workers_and_reruns(tmp_path):
    docs = cc_documents(60)
    planted = [
        _copy(docs[1], "exact", source="wiki"),
        _copy(docs[2], "near", text=_edited(docs[2].text, 80)),
        _copy(docs[2], "near2", source="news", text=_edited(docs[2].text, 70)),
    ]
    config = DedupeConfig(
        priority=["news"],
        exact=ExactDedupeConfig(),
        url=UrlDedupeConfig(),
        minhash=MinHashConfig(),
        paragraph=ParagraphDedupeConfig(),
    )
    runs = [
        run_dedupe(docs + planted, config, tmp_path / "one", workers=1),
        run_dedupe(list(reversed(docs + planted)), config, tmp_path / "two", workers=2, batch_size=5),
        run_dedupe(docs + planted, config, tmp_path / "again", workers=1, batch_size=11),
    ]
    assert runs[0]["rejections"], "the planted copies must be removed"
    for other in runs[1:]:
        assert other == runs[0]


def test_band_rows_split_over_many_runs_and_shards_find_the_same_clusters(tmp_path, monkeypatch):
    docs = cc_documents(60)
    planted = [_copy(docs[i], f"near-{i}", text=_edited(docs[i].text, 60 + i)) for i in range(0, 40, 4)]
    one_run = run_dedupe(docs + planted, DedupeConfig(minhash=MinHashConfig()), tmp_path / "one")
    # 14 rows per document: a run every ~7 documents, each cut into 3 shards.
    monkeypatch.setattr(transforms, "RUN_ROWS", 100)
    many_runs = run_dedupe(
        docs + planted, DedupeConfig(minhash=MinHashConfig(band_shards=3)), tmp_path / "many", workers=2
    )
    removed = {doc_id for _, doc_id in _removed(one_run, "near_duplicate")}
    # Each planted copy or its original goes (the sample has a natural near pair of its own as well).
    assert all(len(removed & {p.id, docs[int(p.id[5:])].id}) == 1 for p in planted)
    assert many_runs == one_run


def test_groupings_cut_into_one_task_per_shard_decide_the_same_as_one_task(tmp_path, monkeypatch):
    docs = cc_documents(60)
    planted = [_copy(docs[1], "exact", source="wiki"), _copy(docs[2], "near", text=_edited(docs[2].text, 80))]
    config = DedupeConfig(
        exact=ExactDedupeConfig(),
        url=UrlDedupeConfig(),
        minhash=MinHashConfig(),
        paragraph=ParagraphDedupeConfig(),
    )
    one_task = run_dedupe(docs + planted, config, tmp_path / "one")
    # A task per shard that holds data: the most tasks, and the most reads per run, the runs allow.
    monkeypatch.setattr(transforms, "TASK_BYTES", 1)
    per_shard = run_dedupe(docs + planted, config, tmp_path / "many", workers=2)
    assert one_task["rejections"] and per_shard == one_task


def test_per_source_minhash_keeps_a_near_copy_in_another_source(tmp_path):
    docs = cc_documents(20)
    planted = [
        _copy(docs[5], "near-web", text=_edited(docs[5].text, 80)),
        _copy(docs[5], "near-wiki", source="wiki", text=_edited(docs[5].text, 90)),
    ]
    per_source = run_dedupe(
        docs + planted, DedupeConfig(minhash=MinHashConfig(scope="per_source")), tmp_path / "a"
    )
    across = run_dedupe(docs + planted, DedupeConfig(minhash=MinHashConfig()), tmp_path / "b")
    family = {("web", docs[5].id), ("web", "near-web"), ("wiki", "near-wiki")}
    assert set(_removed(per_source, "near_duplicate")) & family == {("web", "near-web")}
    assert len(set(_removed(across, "near_duplicate")) & family) == 2


def test_texts_without_words_are_deduplicated_on_their_raw_text(tmp_path):
    docs = [Document("a", "----", "web"), Document("b", "----", "web"), Document("c", "****", "web")]
    result = run_dedupe(docs, DedupeConfig(exact=ExactDedupeConfig(), minhash=MinHashConfig()), tmp_path)
    assert [(r["doc_id"], r["reason"]) for r in result["rejections"]] == [("b", "duplicate_exact")]
