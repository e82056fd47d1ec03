"""The eval n-gram index: built once, named by its content hash, compact arrays, common keys removable."""

import hashlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

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


def test_index_is_kept_in_the_user_cache_and_shared_by_every_output(tmp_path, gsm8k_head, monkeypatch):
    path, _ = gsm8k_head
    monkeypatch.setenv("CURATION_CACHE", str(tmp_path / "cache"))
    index_path, digest = build_index(_config(path), tmp_path)
    assert index_path == str(tmp_path / "cache" / "decon-index" / f"decon-index-{digest}.npz")
    assert (tmp_path / "cache" / "decon-index" / f"decon-index-{digest}.npz.sha256").read_text() == sha256(index_path)
    mtime = os.stat(index_path).st_mtime_ns
    assert build_index(_config(path), tmp_path) == (index_path, digest)
    assert os.stat(index_path).st_mtime_ns == mtime


def sha256(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("damage", ["flipped byte", "truncated", "sidecar missing"])
def test_corrupt_cache_entry_is_rebuilt_with_a_warning(tmp_path, gsm8k_head, damage):
    path, records = gsm8k_head
    index_path, _ = build_index(_config(path), tmp_path, tmp_path / "index")
    good = Path(index_path).read_bytes()
    if damage == "flipped byte":
        Path(index_path).write_bytes(good[:1000] + bytes([good[1000] ^ 1]) + good[1001:])
    elif damage == "truncated":
        Path(index_path).write_bytes(good[: len(good) // 2])
    else:
        os.remove(index_path + ".sha256")
    warnings = []
    assert build_index(_config(path), tmp_path, tmp_path / "index", warn=warnings.append)[0] == index_path
    assert len(warnings) == 1 and index_path in warnings[0] and "rebuilding" in warnings[0]
    assert Path(index_path).read_bytes() == good
    assert Path(index_path + ".sha256").read_text() == sha256(index_path)
    assert build_index(_config(path), tmp_path, tmp_path / "index", warn=warnings.append)[0] == index_path
    assert len(warnings) == 1, "an intact entry is used without a word"


def _build_in_child(args) -> tuple[str, str]:
    config, base, folder = args
    return build_index(config, base, folder, warn=pytest.fail)


def test_concurrent_builds_of_one_entry_leave_it_whole(tmp_path, gsm8k_head):
    path, _ = gsm8k_head
    folder = tmp_path / "index"
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        results = list(pool.map(_build_in_child, [(_config(path), tmp_path, folder)] * 3))
    assert len(set(results)) == 1
    index_path, digest = results[0]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"decon-index-{digest}.npz{suffix}" for suffix in ("", ".sha256", ".lock")
    )
    assert Path(index_path + ".sha256").read_text() == sha256(index_path)
    assert DecontaminationIndex.load(index_path).items_indexed == {"gsm8k": 50}


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
    [keys] = indexed_keys(index, [text])
    assert len(keys) > 0 and detect(index, text)
    assert detect(index.without_keys(keys), text) == []
    assert detect(index.without_keys(keys[: len(keys) // 2]), text), (
        "the remaining keys still anchor the item"
    )
