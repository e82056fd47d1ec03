"""The eval n-gram index: built once, named by its content hash, compact arrays, common keys removable."""

import json
import os

import numpy as np
import pytest
from helpers_decontaminate import EVALS, require_shared

from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig, FieldStripConfig
from filters.decontaminate.detect import detect, indexed_keys
from filters.decontaminate.evalsets import EvalItem
from filters.decontaminate.index import DecontaminationIndex, build_index, index_items


@pytest.fixture
def gsm8k_head(tmp_path):
    require_shared()
    lines = (EVALS / "gsm8k" / "test.jsonl").read_text().splitlines()[:50]
    (tmp_path / "gsm8k.jsonl").write_text("\n".join(lines) + "\n")
    return tmp_path / "gsm8k.jsonl", [json.loads(line) for line in lines]


def _config(path, strip=(), strip_templates=True, **overrides):
    benchmark = EvalSetConfig(
        name="gsm8k",
        paths=[str(path)],
        text_fields=["question", "answer"],
        strip=list(strip),
        strip_templates=strip_templates,
    )
    return DecontaminateConfig(evals=[benchmark], **overrides)


def test_index_file_is_named_by_content_hash_and_reused(tmp_path, gsm8k_head):
    path, records = gsm8k_head
    index_path, digest = build_index(_config(path), tmp_path, tmp_path / "index")
    assert index_path == str(tmp_path / "index" / f"decon-index-{digest}.npz")
    mtime = os.stat(index_path).st_mtime_ns
    assert build_index(_config(path), tmp_path, tmp_path / "index") == (index_path, digest)
    assert os.stat(index_path).st_mtime_ns == mtime


def test_hash_changes_with_eval_content_and_index_parameters(tmp_path, gsm8k_head):
    path, records = gsm8k_head
    _, digest = build_index(_config(path), tmp_path, tmp_path / "index")
    _, other_ngram = build_index(_config(path, ngram=8), tmp_path, tmp_path / "index")
    path.write_text(path.read_text() + json.dumps({"question": "A new question?", "answer": "42"}) + "\n")
    _, other_content = build_index(_config(path), tmp_path, tmp_path / "index")
    assert len({digest, other_ngram, other_content}) == 3


def test_hash_changes_with_the_templates_stripped(tmp_path, gsm8k_head):
    path, _ = gsm8k_head
    digests = {
        build_index(_config(path, **kw), tmp_path, tmp_path / "index")[1]
        for kw in (
            {},
            {"strip_templates": False},
            {"strip": [FieldStripConfig(prefix="Question:")]},
            {"strip": [FieldStripConfig(prefix="Question:", fields=["question"])]},
            {"strip": [FieldStripConfig(pattern="#### [0-9]+")]},
        )
    }
    assert len(digests) == 5


def test_saved_index_detects_like_the_built_one(tmp_path, gsm8k_head):
    path, records = gsm8k_head
    index_path, _ = build_index(_config(path), tmp_path, tmp_path / "index")
    loaded = DecontaminationIndex.load(index_path)
    assert loaded.items_indexed == {"gsm8k": 50}
    assert loaded.ngram_keys.dtype == np.uint64 and np.all(np.diff(loaded.ngram_keys.astype(np.float64)) >= 0)
    text = "Some page. " + records[7]["question"] + " More text."
    (match,) = detect(loaded, text)
    assert (match.benchmark, match.item_id, match.score) == ("gsm8k", "gsm8k.jsonl:7", 1.0)
    assert text[match.start : match.end] == records[7]["question"].rstrip("?")


def test_items_under_min_words_are_counted_not_indexed():
    items = [
        EvalItem("piqa", "0", ("dresser", "replace drawer with bobby pin"), (True, True)),
        EvalItem("piqa", "1", ("How do I ready a guinea pig cage for new occupants?",), (True,)),
    ]
    index = index_items(items, ngram=13, min_item_words=8)
    assert index.items_too_short == {"piqa": 1}
    assert index.items_indexed == {"piqa": 1}
    assert index.item_ids == ["1"]


def test_common_keys_stop_being_evidence(tmp_path, gsm8k_head):
    path, records = gsm8k_head
    index = DecontaminationIndex.load(build_index(_config(path), tmp_path, tmp_path / "index")[0])
    text = records[3]["question"] + "\n" + records[3]["answer"]
    keys = indexed_keys(index, text)
    assert len(keys) > 0 and detect(index, text)
    assert detect(index.without_keys(keys), text) == []
    assert detect(index.without_keys(keys[: len(keys) // 2]), text), (
        "the remaining keys still anchor the item"
    )
