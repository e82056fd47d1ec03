"""The misses of issue #15 part 2, on real items of ../shared/evals planted in real web and code documents:
one word changed at each position of 13-20-word items, edits that change the word count, HumanEval with
its punctuation stripped, and eval fields that carry a prompt template. Recall and false positives per
class, before and after, are in BENCHMARKS.md (Decontamination recall by edit class).

A false positive is a match that reaches outside the planted text into the clean host document.
"""

import json

import pytest
from helpers_decontaminate import (
    EVALS,
    code_texts,
    edit_class_cases,
    recall_and_false_positives,
    render,
    require_shared,
    suite_index,
    suite_items,
    templated_cases,
    templated_eval_file,
    web_texts,
    word_replaced,
)

from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig, FieldStripConfig
from filters.decontaminate.detect import detect
from filters.decontaminate.evalsets import EvalItem
from filters.decontaminate.index import DecontaminationIndex, build_index, index_items
from filters.decontaminate.words import normalized_words


@pytest.fixture(scope="module")
def web():
    require_shared()
    return web_texts()


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    require_shared()
    return suite_index(tmp_path_factory.mktemp("decon-index"))


@pytest.fixture(scope="module")
def cases(web):
    return edit_class_cases(web, code_texts(), per_class=400)


def _class(cases, prefix: str):
    (name,) = [name for name in cases if name.startswith(prefix)]
    return cases[name]


@pytest.mark.parametrize(
    ("prefix", "min_recall"),
    [
        ("verbatim", 1.0),
        ("one word changed", 1.0),
        ("word count changed", 0.99),
        ("HumanEval code", 0.95),
    ],
)
def test_recall_per_edit_class_without_false_positives(index, cases, prefix, min_recall):
    planted = _class(cases, prefix)
    recall, missed, _, false = recall_and_false_positives(index, planted)
    assert len(planted) >= 100
    assert recall >= min_recall, missed[:10]
    assert false == []


def test_one_word_changed_where_both_anchors_of_a_14_word_item_lie():
    # GSM8K test item 1. With anchors of 8 words, words 6 and 7 were in both the first and the last anchor.
    question = "A robe takes 2 bolts of blue fiber and half that much white fiber."
    assert len(normalized_words(question)) == 14
    index = index_items([EvalItem("gsm8k", "1", (question,), (True,))], ngram=13, min_item_words=8)
    for position in range(14):
        text = f"Sewing notes.\n{word_replaced(question, position)}\nThat is all."
        assert [m.item_id for m in detect(index, text)] == ["1"], position
    assert detect(index, word_replaced(word_replaced(question, 3), 9)) == [], "two changes in 14 words"


def test_a_merged_possessive_is_matched_with_both_halves_of_the_item(index):
    question = next(i for i in suite_items() if i.item_id == "test.jsonl:0" and i.benchmark == "gsm8k")
    text = render(question).replace("Janet\u2019s", "Janets").replace("farmer\u2019s", "farmers")
    (match,) = [m for m in detect(index, f"Blog post.\n{text}\nThe end.") if m.benchmark == "gsm8k"]
    assert match.score == 1.0
    assert text[: text.index("\n")] in f"Blog post.\n{text}"[match.start : match.end]


def test_code_with_tokens_merged_by_stripped_punctuation_is_found():
    item = EvalItem(
        "humaneval", "add", ("def add(a,b,n):\n    return a + b * n  # adds twice over\n",), (True,)
    )
    index = index_items([item], ngram=13, min_item_words=8)
    stripped = "def addabn\n    return a  b  n   adds twice over\n"
    assert [m.score for m in detect(index, f"Some code.\n{stripped}")] == [1.0]
    assert detect(index, "def subtract x y return x minus y and adds nothing over twice") == []


def _templated_index(folder, path, **overrides) -> DecontaminationIndex:
    benchmark = EvalSetConfig(
        name="templated", paths=[str(path)], text_fields=["prompt"], id_field="id", **overrides
    )
    return DecontaminationIndex.load(build_index(DecontaminateConfig(evals=[benchmark]), folder, folder)[0])


def test_default_templates_are_stripped_from_eval_fields(tmp_path, web):
    path, bare = templated_eval_file(tmp_path, per_benchmark=40, seed_name="decontaminate-templated-test")
    planted = templated_cases(web, bare, "templated")
    recall, missed, _, false = recall_and_false_positives(_templated_index(tmp_path, path), planted)
    assert recall >= 0.99 and false == [], missed[:10]
    kept_templates = _templated_index(tmp_path, path, strip_templates=False)
    recall_without, _, _, _ = recall_and_false_positives(kept_templates, planted)
    assert recall_without < 0.6, "the templates were what hid the items"


def test_manifest_strips_a_prefix_suffix_and_pattern_per_field(tmp_path):
    require_shared()
    lines = (EVALS / "gsm8k" / "test.jsonl").read_text().splitlines()[:30]
    questions = [json.loads(line)["question"] for line in lines]
    path = tmp_path / "chat.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": str(k), "prompt": f"<|user|> Solve this. {q} [end of problem] <|assistant|>"})
            + "\n"
            for k, q in enumerate(questions)
        )
    )
    rules = [
        FieldStripConfig(prefix="<|user|> Solve this.", suffix="<|assistant|>", fields=["prompt"]),
        FieldStripConfig(pattern=r"\[end of [a-z]+\]"),
    ]
    stripped = _templated_index(tmp_path, path, strip=rules)
    kept = _templated_index(tmp_path, path)
    found = [k for k, q in enumerate(questions) if detect(stripped, f"Homework.\n{q}\nDone.")]
    assert found == list(range(30))
    assert sum(1 for q in questions if detect(kept, f"Homework.\n{q}\nDone.")) < 30
