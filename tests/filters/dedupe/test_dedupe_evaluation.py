"""Near-duplicate quality on real text (scripts/build_dedupe_eval.py): our MinHash at its defaults
against the truth groups, and against datatrove 0.10.1's four MinHash stages on the same input."""

from __future__ import annotations

import gzip
import importlib.util
import json
import subprocess
from pathlib import Path

import pytest

from curation.document import Document
from filters.dedupe.config import DedupeConfig, MinHashConfig
from filters.dedupe.evaluation import pair_precision_recall
from tests.helpers_dedupe import SHARED, run_dedupe, shared_or_skip

REPO = Path(__file__).resolve().parents[3]
PEER_PYTHON = Path.home() / "peers/datatrove/bin/python"


def _build_eval() -> list[dict]:
    shared_or_skip(SHARED / "corpora/reviews/imdb-aclImdb-50k-labeled.jsonl.zst")
    spec = importlib.util.spec_from_file_location("build_dedupe_eval", REPO / "scripts/build_dedupe_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build_eval(SHARED)


@pytest.fixture(scope="module")
def eval_records() -> list[dict]:
    return _build_eval()


def _our_clusters(records: list[dict], out: Path) -> dict[str, str]:
    docs = [Document(f"{r['source']}/{r['id']}", r["text"], "eval") for r in records]
    result = run_dedupe(docs, DedupeConfig(minhash=MinHashConfig()), out, batch_size=500)
    # A kept document alone in its cluster is its own cluster, whatever its content hash.
    clusters = {
        doc_id: c["cluster_id"] if c["cluster_size"] > 1 else doc_id
        for (_, doc_id), c in result["clusters"].items()
    }
    clusters.update({r["doc_id"]: r["detail"]["cluster_id"] for r in result["rejections"]})
    return clusters


def _datatrove_clusters(records: list[dict], workdir: Path) -> dict[str, str]:
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
    return json.loads((workdir / "datatrove/clusters.json").read_text())


@pytest.mark.slow
def test_minhash_at_defaults_finds_near_duplicates_with_high_precision_and_recall(eval_records, tmp_path):
    truth = {f"{r['source']}/{r['id']}": r["group"] for r in eval_records}
    ours = pair_precision_recall(truth, _our_clusters(eval_records, tmp_path / "ours"))
    print("ours", ours)
    assert ours["true_pairs"] > 1500
    assert ours["precision"] >= 0.99
    assert ours["recall"] >= 0.97
    if not PEER_PYTHON.exists():
        pytest.skip(f"datatrove peer venv {PEER_PYTHON} absent (see ../shared/PEERS.md): comparison not run")
    theirs = pair_precision_recall(truth, _datatrove_clusters(eval_records, tmp_path))
    print("datatrove", theirs)
    assert ours["recall"] >= theirs["recall"] - 0.01
