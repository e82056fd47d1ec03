"""What a finished mix holds, read the way its users read it: proportions as requested, every document's
tokens equal to a fresh tokenization of its curated text, and shards as OLMo-core's NumpyFSLDataset sees them.
One real small mix (four real sources from the shipped demo data) serves every test here."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
import zstandard
from conftest import DEMO_DATA, TOKENIZER, write_manifest

from curation.pipeline import run
from mixes.manifest import load_manifest
from mixes.shards import fsl_instances, iter_documents, read_shard
from mixes.tokenizer import load_tokenizer

# Budgets large against each source's documents: a document is never split, so a budget of a few
# documents (WikiText articles run to thousands of tokens) can only be met to within part of one.
REQUESTED = {"web": 0.35, "code": 0.25, "math": 0.25, "papers": 0.15}
TARGET_TOKENS = 300_000


@pytest.fixture(scope="module")
def mix(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("mix")
    body = {
        "name": "mix-check",
        "version": "1.0.0",
        "seed": 11,
        "sources": [
            {"name": "web", "paths": [str(DEMO_DATA / "web" / "cc-2019-30-00140.jsonl.gz")]},
            {"name": "code", "paths": [str(DEMO_DATA / "code" / "*.jsonl.zst")]},
            {"name": "math", "paths": [str(DEMO_DATA / "math" / "*")]},
            {"name": "papers", "paths": [str(DEMO_DATA / "papers" / "*.jsonl.gz")]},
        ],
        "dedupe": {"exact": {"scope": "global"}},
        "mix": {"target_tokens": TARGET_TOKENS, "sources": {k: {"ratio": v} for k, v in REQUESTED.items()}},
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 100_000},
    }
    stats = run(load_manifest(write_manifest(folder, body)), ["--direct_num_workers=2"], log=lambda _: None)
    return folder / "out" / "mix-check" / "1.0.0", stats


def published_texts(root: Path) -> dict[tuple[str, str], str]:
    texts = {}
    for path in sorted((root / "documents").glob("*/*.jsonl.zst")):
        with zstandard.ZstdDecompressor().stream_reader(path.open("rb")) as f:
            for line in f.read().splitlines():
                doc = orjson.loads(line)
                texts[(doc["source"], doc["id"])] = doc["text"]
    return texts


def test_achieved_proportions_are_within_one_percent_of_requested(mix):
    _, stats = mix
    total = stats["totals"]["mixed_tokens"]
    assert abs(total - TARGET_TOKENS) / TARGET_TOKENS < 0.01
    for name, ratio in REQUESTED.items():
        achieved = stats["sources"][name]["achieved_tokens"] / total
        assert abs(achieved - ratio) / ratio < 0.01, (name, achieved, ratio)


def test_every_documents_tokens_equal_a_fresh_tokenization_of_its_text(mix):
    root, _ = mix
    texts = published_texts(root)
    tokenizer = load_tokenizer(TOKENIZER, "literal")
    checked = 0
    for sidecar in sorted((root / "shards").glob("part-*.json")):
        shard = read_shard(sidecar, verify=True)
        records = list(iter_documents(shard))
        fresh = tokenizer.encode_batch([texts[(r.source, r.doc_id)] for r, _ in records])
        for (record, tokens), ids in zip(records, fresh):
            assert tokens[-1] == tokenizer.eos_id
            assert np.array_equal(tokens[:-1], ids), record.doc_id
            checked += 1
    assert checked == sum(s["documents"] for s in _sidecars(root)) and checked > 100


def _sidecars(root: Path) -> list[dict]:
    return [orjson.loads(p.read_bytes()) for p in sorted((root / "shards").glob("part-*.json"))]


def test_shards_read_as_olmo_core_fixed_length_instances(mix):
    root, _ = mix
    sidecars = _sidecars(root)
    paths = sorted((root / "shards").glob("part-*.npy"))
    assert {s["dtype"] for s in sidecars} == {"uint32"} and {s["vocab_size"] for s in sidecars} == {100_278}
    sequence_length = 2048
    instances = fsl_instances(paths, "uint32", sequence_length)
    assert len(instances) == sum(s["tokens"] // sequence_length for s in sidecars)
    raw = np.memmap(paths[0], dtype="<u4", mode="r")
    assert np.array_equal(instances[1], raw[sequence_length : 2 * sequence_length])


def test_mix_reads_inputs_from_s3(tmp_path, s3_bucket, s3_endpoint, monkeypatch):
    from curation import storage

    for name in ("c4-sample.01.json.gz", "c4-sample.02.json.gz"):
        bucket, key = storage.split_s3(f"{s3_bucket}/web/{name}")
        storage._s3().put_object(Bucket=bucket, Key=key, Body=(DEMO_DATA / "web" / name).read_bytes())
    # Worker processes configure their S3 client from the environment.
    monkeypatch.setenv("CURATION_S3_ENDPOINT_URL", s3_endpoint)
    body = {
        "name": "from-s3",
        "version": "1.0.0",
        "seed": 1,
        "sources": [{"name": "web", "paths": [f"{s3_bucket}/web/*.json.gz"]}],
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 100_000},
    }
    stats = run(load_manifest(write_manifest(tmp_path, body)), ["--direct_num_workers=2"], log=lambda _: None)
    assert stats["sources"]["web"]["read"] == 20 and stats["totals"]["mixed_tokens"] > 0
    lock = orjson.loads((tmp_path / "out" / "from-s3" / "1.0.0" / "lock.json").read_bytes())
    inputs = {i["uri"]: i for i in lock["inputs"]}
    assert set(inputs) == {f"{s3_bucket}/web/c4-sample.01.json.gz", f"{s3_bucket}/web/c4-sample.02.json.gz"}
    assert all(i.get("etag") and len(i["sha256"]) == 64 for i in inputs.values())
    shutil.rmtree(tmp_path / "out")


def test_dedupe_scratch_is_gone_once_its_duplicates_are_recorded(mix):
    root, stats = mix
    assert stats["dedupe_cluster_sizes"], "exact dedupe must have found the demo's duplicate copies"
    work = root.parent.parent / "_cache" / "work"
    assert not work.exists() or not any(work.iterdir())
