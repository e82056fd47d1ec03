"""Near-duplicate quality on real text (scripts/build_dedupe_eval.py): our MinHash at its defaults
against the true duplicate pairs, and against datatrove 0.10.1's four MinHash stages on the same input."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from curation.document import Document
from filters.dedupe.config import DedupeConfig, MinHashConfig
from tests.helpers_dedupe import SHARED, eval_builder, run_dedupe, shared_or_skip

REPO = Path(__file__).resolve().parents[3]
PEER_PYTHON = Path.home() / "peers/datatrove/bin/python"


def _build_eval() -> list[dict]:
    shared_or_skip(SHARED / "corpora/reviews/imdb-aclImdb-50k-labeled.jsonl.zst")
    return eval_builder().build_eval(SHARED)


@pytest.fixture(scope="module")
def eval_records() -> list[dict]:
    return _build_eval()


def _our_clusters(records: list[dict], out: Path) -> tuple[dict[str, str], set[str]]:
    docs = [Document(f"{r['source']}/{r['id']}", r["text"], "eval") for r in records]
    result = run_dedupe(docs, DedupeConfig(minhash=MinHashConfig()), out, batch_size=500)
    # A kept document alone in its cluster is its own cluster, whatever its content hash.
    clusters = {
        doc_id: c["cluster_id"] if c["cluster_size"] > 1 else doc_id
        for (_, doc_id), c in result["clusters"].items()
    }
    clusters.update({r["doc_id"]: r["detail"]["cluster_id"] for r in result["rejections"]})
    return clusters, {r["doc_id"] for r in result["rejections"]}


def _datatrove_clusters(records: list[dict], workdir: Path) -> tuple[dict[str, str], set[str]]:
    corpus = workdir / "eval.jsonl.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"id": f"{r['source']}/{r['id']}", "text": r["text"]}) + "\n")
    subprocess.run(
        [
            str(PEER_PYTHON),
            str(REPO / "bench/bench_dedupe.py"),
            "datatrove",
            "--input",
            str(corpus),
            "--workdir",
            str(workdir / "datatrove"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return (
        json.loads((workdir / "datatrove/clusters.json").read_text()),
        set(json.loads((workdir / "datatrove/removed.json").read_text())),
    )


@pytest.mark.slow
def test_minhash_at_defaults_finds_near_duplicates_and_never_removes_a_text_far_from_its_kept_copy(
    eval_records, tmp_path
):
    score = eval_builder().score_clustering
    ours = score(eval_records, *_our_clusters(eval_records, tmp_path / "ours"))
    print("ours", ours)
    assert ours["all"]["true_pairs"] > 2000 and ours["licence_families"]["true_pairs"] > 300
    assert ours["removed_not_duplicate_of_kept"] == 0
    assert ours["all"]["precision"] >= 0.97 and ours["all"]["recall"] >= 0.97
    assert ours["licence_families"]["precision"] >= 0.9 and ours["licence_families"]["recall"] >= 0.9
    if not PEER_PYTHON.exists():
        pytest.skip(f"datatrove peer venv {PEER_PYTHON} absent (see ../shared/PEERS.md): comparison not run")
    theirs = score(eval_records, *_datatrove_clusters(eval_records, tmp_path))
    print("datatrove", theirs)
    # datatrove's connected components chain through related texts: far lower precision, a few points
    # more recall.
    assert theirs["removed_not_duplicate_of_kept"] > 0
    assert ours["all"]["precision"] >= theirs["all"]["precision"] + 0.1
    assert ours["all"]["recall"] >= theirs["all"]["recall"] - 0.05
