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
from filters.decontaminate.detect import _screened_together, detect, detect_all, may_contain_items
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
    docs = [
        embed(web[k * 7 % len(web)], light_edit(render(item), rng) if edit else render(item), rng)
        for k, item in enumerate(items)
    ]
    # Screened as the pipeline screens them, a batch at a time.
    missed = [
        (item.benchmark, item.item_id)
        for item, matches in zip(items, detect_all(index, docs))
        if not any((m.benchmark, m.item_id) == (item.benchmark, item.item_id) for m in matches)
    ]
    return 1 - len(missed) / len(items), missed


def test_recall_on_items_planted_verbatim_in_real_web_text(index, web):
    recall, missed = _recall(index, web, edit=False)
    assert recall >= 0.99, missed[:10]


def test_recall_on_items_planted_lightly_edited_in_real_web_text(index, web):
    recall, missed = _recall(index, web, edit=True)
    assert recall >= 0.95, missed[:10]


def test_a_batch_finds_what_each_of_its_texts_finds_alone(index, web):
    rng = rng_for("decontaminate-batch")
    planted = [
        embed(web[k * 3], light_edit(render(item), rng), rng)
        for k, item in enumerate(sample_indexed_items(40, "decontaminate-batch"))
    ]
    texts = [t for pair in zip(planted, web[1::5]) for t in pair]
    found = detect_all(index, texts)
    assert found == [detect(index, t) for t in texts]
    assert sum(1 for matches in found if matches) >= 38


@pytest.mark.parametrize("second_text_ascii", [True, False])
def test_a_window_across_two_texts_of_a_batch_counts_for_neither(index, web, second_text_ascii):
    """The texts of a batch are hashed end to end: an item whose start ends one text and whose rest starts
    the next is in neither (the ASCII texts are laid out first, the others after them)."""
    item = next(i for i in sample_indexed_items(40, "decontaminate-across") if len(render(i).split()) >= 40)
    chunks = render(item).split()
    clean = next(t for t in web if t.isascii() and not detect(index, t))
    first = f"{clean}\n{' '.join(chunks[:5])}"
    second = " ".join(chunks[5:]) + (
        "\nThe end." if second_text_ascii else "\nFin de l\u2019histoire, caf\u00e9."
    )
    assert may_contain_items(index, [first + "\n" + second]).tolist() == [True]
    assert may_contain_items(index, [first, second]).tolist() == [False, True]
    assert may_contain_items(index, [second, first]).tolist() == [True, False]


def test_texts_are_screened_together_up_to_a_number_of_characters(monkeypatch):
    monkeypatch.setattr("filters.decontaminate.detect._SCREEN_CHARS", 10)
    assert _screened_together([4, 4, 4, 20, 1, 9, 0]) == [(0, 2), (2, 3), (3, 4), (4, 7)]
    assert _screened_together([]) == []


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
