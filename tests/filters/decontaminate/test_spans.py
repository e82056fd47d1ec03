"""Span removal (GPT-3 / NeMo style) and the ledger rows of each action, without Beam."""

import pytest

from curation.document import Document, Provenance, text_hash
from filters.decontaminate.actions import apply_action
from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.detect import Match
from filters.decontaminate.spans import NO_PIECE_LEFT, TOO_MANY_SPLITS, cut_ranges, remove_spans

PARAGRAPH = (
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore. "
)


def _doc(text: str) -> Document:
    return Document(
        id="d1",
        text=text,
        source="web",
        metadata={"url": "https://example.org"},
        provenance=Provenance(uri="s3://bucket/web.jsonl.gz", line=7, text_hash=text_hash(text)),
    )


def test_cut_widens_each_span_by_the_margin_and_merges_overlaps():
    assert cut_ranges([(500, 520), (100, 120)], 1000, 200) == [(0, 720)]
    assert cut_ranges([(300, 320), (900, 910)], 1000, 200) == [(100, 520), (700, 1000)]


def test_removing_a_span_splits_the_document_into_pieces_with_ids_and_provenance():
    text = PARAGRAPH * 6 + "CONTAMINATED SPAN" + " " + PARAGRAPH * 6
    start = text.index("CONTAMINATED")
    pieces = remove_spans(
        _doc(text), [(start, start + 17)], margin_chars=200, min_piece_chars=200, max_splits=10
    )
    assert [p.id for p in pieces] == ["d1#part0", "d1#part1"]
    assert all("CONTAMINATED" not in p.text and len(p.text) >= 200 for p in pieces)
    assert len(text) - sum(len(p.text) for p in pieces) >= 17 + 2 * 200 - 2
    for p in pieces:
        begin = p.attributes["decon_v1/piece_start_char"]
        assert text[begin : p.attributes["decon_v1/piece_end_char"]] == p.text
        assert p.provenance.uri == "s3://bucket/web.jsonl.gz" and p.provenance.line == 7
        assert p.provenance.text_hash == text_hash(p.text)
        assert p.source == "web" and p.metadata == {"url": "https://example.org"}


def test_pieces_under_the_minimum_are_dropped():
    text = "short lead. " + "CONTAMINATED" + " " + PARAGRAPH * 6
    start = text.index("CONTAMINATED")
    pieces = remove_spans(
        _doc(text), [(start, start + 12)], margin_chars=5, min_piece_chars=200, max_splits=10
    )
    assert [p.id for p in pieces] == ["d1#part0"]
    assert pieces[0].attributes["decon_v1/piece_start_char"] >= start + 12 + 5


def test_nothing_left_and_too_many_splits_are_reasons():
    text = PARAGRAPH * 3
    assert remove_spans(_doc(text), [(0, len(text))], 200, 200, 10) == NO_PIECE_LEFT
    spans = [(i * 1000, i * 1000 + 10) for i in range(1, 12)]
    assert remove_spans(_doc(PARAGRAPH * 130), spans, 200, 200, 10) == TOO_MANY_SPLITS
    assert len(remove_spans(_doc(PARAGRAPH * 130), spans[:10], 200, 200, 10)) == 11


@pytest.mark.parametrize("action", ["drop_document", "remove_span"])
def test_actions_write_ledger_rows_with_benchmark_item_and_span(action):
    text = PARAGRAPH * 6 + "CONTAMINATED" + " " + PARAGRAPH * 6
    start = text.index("CONTAMINATED")
    match = Match("gsm8k", "test.jsonl:3", 0.95, start, start + 12)
    config = DecontaminateConfig(eval_files=["x.yaml"], action=action)
    outcome = apply_action(_doc(text), [match], config)
    (row,) = outcome.rejections
    assert (row.doc_id, row.source, row.stage, row.filter) == ("d1", "web", "decontaminate", "decon_v1")
    assert row.score == 0.95 and row.uri == "s3://bucket/web.jsonl.gz"
    assert row.detail["benchmark"] == "gsm8k" and row.detail["item_id"] == "test.jsonl:3"
    assert row.detail["span"] == [start, start + 12]
    if action == "drop_document":
        assert row.reason == "contaminated" and outcome.documents == [] and outcome.cuts == []
    else:
        assert row.reason == "contaminated_span"
        assert [d.id for d in outcome.documents] == ["d1#part0", "d1#part1"]
        assert outcome.cuts == [(start - 200, start + 12 + 200)]


def test_clean_document_passes_unchanged_and_split_limit_drops_the_document():
    config = DecontaminateConfig(eval_files=["x.yaml"], max_splits=2)
    doc = _doc(PARAGRAPH * 60)
    assert apply_action(doc, [], config).documents == [doc]
    matches = [Match("mmlu", str(i), 1.0, i * 1000, i * 1000 + 50) for i in range(1, 4)]
    outcome = apply_action(doc, matches, config)
    assert outcome.documents == []
    assert [r.reason for r in outcome.rejections] == ["too_many_splits"]
    assert outcome.rejections[0].detail["matches_total"] == 3
