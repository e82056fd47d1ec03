"""Detection quality: allenai/decon's fixtures, eval items planted in real web text verbatim and lightly
edited, clean real documents, and GSM8K train against GSM8K test."""

import difflib
import json

import pytest
from helpers_decontaminate import (
    DECON_FIXTURES,
    EVALS,
    SHARED,
    embed,
    light_edit,
    news_texts,
    render,
    require_shared,
    rng_for,
    sample_indexed_items,
    suite_index,
    web_texts,
)

from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig
from filters.decontaminate.detect import detect
from filters.decontaminate.evalsets import EvalItem
from filters.decontaminate.index import DecontaminationIndex, build_index, index_items
from filters.decontaminate.words import normalized_words


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    require_shared()
    return suite_index(tmp_path_factory.mktemp("decon-index"))


@pytest.fixture(scope="module")
def web():
    require_shared()
    return web_texts()


def _fixture_index(tmp_path, reference: str, fields: list[str]) -> DecontaminationIndex:
    cfg = DecontaminateConfig(
        evals=[
            EvalSetConfig(
                name="fx", paths=[str(DECON_FIXTURES / reference)], text_fields=fields, id_field="doc_id"
            )
        ]
    )
    return DecontaminationIndex.load(build_index(cfg, tmp_path, tmp_path)[0])


def _found(index, path, line):
    text = json.loads((DECON_FIXTURES / path).read_text().splitlines()[line])["text"]
    return sorted({m.item_id for m in detect(index, text)})


# (training file, line, eval items expected) against decon's passage/question/answer reference.
DECON_EXPECTED = [
    ("training_contaminated_mixed.jsonl", 0, ["101"]),
    ("training_contaminated_mixed.jsonl", 1, []),  # paraphrase: not an n-gram overlap
    ("training_contaminated_mixed.jsonl", 2, []),
    ("training_contaminated_mixed.jsonl", 3, ["102"]),
    ("training_contaminated_mixed.jsonl", 4, ["103"]),
    ("training_contaminated_at_beginning.jsonl", 0, ["101"]),
    ("training_contaminated_middle_position.jsonl", 0, ["101"]),
    ("training_contaminated_at_end.jsonl", 0, ["101"]),
    ("training_contaminated_multiple_in_one.jsonl", 0, ["101", "102", "103"]),
    ("training_contaminated_punctuation_variation.jsonl", 0, ["101"]),
    ("training_contaminated_single_edit.jsonl", 0, ["101"]),
    ("training_contaminated_single_insertion.jsonl", 0, ["101"]),
    ("training_contaminated_single_deletion.jsonl", 0, ["101"]),
    ("training_contaminated_edge_cases.jsonl", 1, ["101"]),  # markdown and punctuation around the passage
    ("training_contaminated_edge_cases.jsonl", 2, ["101"]),
    ("training_contaminated_edge_cases.jsonl", 3, ["102"]),
    ("training_contaminated_edge_cases.jsonl", 4, []),  # three misspellings in 18 words
    ("training_long_document.jsonl", 0, ["101", "102"]),
    ("training_demo.jsonl", 0, []),
    ("training_demo.jsonl", 1, []),
] + [("training_clean.jsonl", i, []) for i in range(5)]


def test_decon_fixtures_match_expected_items(tmp_path):
    require_shared()
    index = _fixture_index(
        tmp_path, "reference_passage_question_answer_reference.jsonl", ["passage", "question", "answer"]
    )
    found = {(path, line): _found(index, path, line) for path, line, _ in DECON_EXPECTED}
    assert found == {(path, line): expected for path, line, expected in DECON_EXPECTED}


def test_decon_question_only_reference_finds_punctuation_variants(tmp_path):
    require_shared()
    index = _fixture_index(tmp_path, "reference_question_reference.jsonl", ["question"])
    assert _found(index, "training_contaminated_punctuation_variation.jsonl", 0) == ["101"]
    assert _found(index, "training_contaminated_mixed.jsonl", 3) == ["102"]
    assert all(_found(index, "training_clean.jsonl", i) == [] for i in range(5))


def test_matched_span_points_at_the_item_in_the_document(tmp_path):
    require_shared()
    index = _fixture_index(tmp_path, "reference_question_reference.jsonl", ["question"])
    text = json.loads((DECON_FIXTURES / "training_contaminated_middle_position.jsonl").read_text())["text"]
    (match,) = detect(index, text)
    assert text[match.start : match.end] == (
        "The Eiffel Tower, a landmark in Paris, France, was constructed in 1889. "
        "It is a global cultural icon. What year was the Eiffel Tower constructed"
    )
    assert match.score == 1.0


def test_short_items_match_only_whole():
    question = "Which element is most abundant in the Earth's crust?"
    index = index_items([EvalItem("fx", "102", (question,), (True,))], ngram=13, min_item_words=8)
    assert [m.item_id for m in detect(index, f"Quiz time. {question} Oxygen.")] == ["102"]
    assert detect(index, "Quiz time. Which element is most abundant in the Earth's mantle? Oxygen.") == []


def _recall(index, web, edit: bool) -> tuple[float, list]:
    items = sample_indexed_items(800, "decontaminate-recall")
    rng = rng_for(f"decontaminate-recall-edit={edit}")
    missed = []
    for k, item in enumerate(items):
        text = light_edit(render(item), rng) if edit else render(item)
        doc = embed(web[k * 7 % len(web)], text, rng)
        if not any((m.benchmark, m.item_id) == (item.benchmark, item.item_id) for m in detect(index, doc)):
            missed.append((item.benchmark, item.item_id))
    return 1 - len(missed) / len(items), missed


def test_recall_on_items_planted_verbatim_in_real_web_text(index, web):
    recall, missed = _recall(index, web, edit=False)
    assert recall >= 0.99, missed[:10]


def test_recall_on_items_planted_lightly_edited_in_real_web_text(index, web):
    recall, missed = _recall(index, web, edit=True)
    assert recall >= 0.95, missed[:10]


def test_clean_real_documents_are_rarely_flagged(index, web):
    clean = web + news_texts()
    flagged = [(i, m) for i, text in enumerate(clean) for m in detect(index, text)]
    assert len(clean) > 8000
    assert len({i for i, _ in flagged}) <= 0.001 * len(clean), flagged[:5]


def test_gsm8k_train_is_flagged_only_where_the_test_question_really_is(index):
    require_shared()
    test = [json.loads(line) for line in (EVALS / "gsm8k" / "test.jsonl").open()]
    train = [json.loads(line) for line in (SHARED / "corpora" / "math" / "gsm8k-train.jsonl").open()]
    test_questions = [" ".join(normalized_words(t["question"])) for t in test]

    def same_question(train_question: str, test_index: int) -> bool:
        words = " ".join(normalized_words(train_question))
        return difflib.SequenceMatcher(None, words, test_questions[test_index], autojunk=False).ratio() > 0.95

    flagged = {}
    for i, t in enumerate(train):
        for m in detect(index, t["question"] + "\n" + t["answer"]):
            if m.benchmark == "gsm8k":
                flagged[i] = int(m.item_id.split(":")[1])
    assert all(same_question(train[i]["question"], j) for i, j in flagged.items()), flagged
    # True overlaps found independently (same normalized question) must all be flagged.
    by_question = {q: j for j, q in enumerate(test_questions)}
    overlaps = {
        i: by_question[q]
        for i, t in enumerate(train)
        if (q := " ".join(normalized_words(t["question"]))) in by_question
    }
    assert overlaps.items() <= flagged.items()
    # And the check can fail: a train document carrying a real test question is flagged.
    planted = train[0]["question"] + "\n" + test[11]["question"] + "\n" + train[0]["answer"]
    assert ("gsm8k", "test.jsonl:11") in {(m.benchmark, m.item_id) for m in detect(index, planted)}
