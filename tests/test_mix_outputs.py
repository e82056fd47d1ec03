"""What a finished mix holds, read the way its users read it: proportions as requested, every document's
tokens equal to a fresh tokenization of its curated text, and shards as OLMo-core's NumpyFSLDataset sees them.
One real small mix (four real sources from the shipped demo data, `demo_mix` in helpers_mix.py) serves every
test here."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import zstandard
from conftest import DEMO_DATA, TOKENIZER, write_manifest
from helpers_mix import REQUESTED, TARGET_TOKENS
from helpers_sampling import plan_source, shuffle_order

from curation import storage
from curation.errors import InputError
from curation.layout import RunLayout
from curation.pipeline import curate, decide, prepare, run, tokenize
from curation.stages.mix import (
    DocRef,
    gather_shard_tokens,
    mix_and_write,
    plan_reads,
    read_shard_plan,
    write_shard_plan,
)
from curation.stages.mix_plan import budgets, plan_mix
from mixes.manifest import MixConfig, MixSourceConfig, load_manifest
from mixes.shards import StoredTokens, fsl_instances, iter_documents, read_shard
from mixes.tokenizer import load_tokenizer


def published_texts(root: Path) -> dict[tuple[str, str], str]:
    texts = {}
    for path in sorted((root / "documents").glob("*/*.jsonl.zst")):
        with zstandard.ZstdDecompressor().stream_reader(path.open("rb")) as f:
            for line in f.read().splitlines():
                doc = orjson.loads(line)
                texts[(doc["source"], doc["id"])] = doc["text"]
    return texts


def test_achieved_proportions_are_within_one_percent_of_requested(demo_mix):
    _, stats = demo_mix
    total = stats["totals"]["mixed_tokens"]
    assert abs(total - TARGET_TOKENS) / TARGET_TOKENS < 0.01
    for name, ratio in REQUESTED.items():
        achieved = stats["sources"][name]["achieved_tokens"] / total
        assert abs(achieved - ratio) / ratio < 0.01, (name, achieved, ratio)


def test_every_documents_tokens_equal_a_fresh_tokenization_of_its_text(demo_mix):
    root, _ = demo_mix
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


def test_shards_read_as_olmo_core_fixed_length_instances(demo_mix):
    root, _ = demo_mix
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


def test_dedupe_scratch_is_gone_once_its_duplicates_are_recorded(demo_mix):
    root, stats = demo_mix
    assert stats["dedupe_cluster_sizes"], "exact dedupe must have found the demo's duplicate copies"
    work = root.parent.parent / "_cache" / "work"
    assert not work.exists() or not any(work.iterdir())


def _on_s3(root: Path, bucket: str, truncated_source: str | None = None):
    """The finished mix's run context and token caches (the run's own, all cached), with the caches copied to
    S3 and the output moved there; `truncated_source`'s caches lose their second half on the way."""
    ctx = prepare(load_manifest(root.parents[2] / "manifest.yaml"), ["--direct_num_workers=2"], log=lambda _: None)
    pools = curate(ctx)
    token_files = tokenize(ctx, pools, *decide(ctx, pools))
    on_s3 = []
    for tf in token_files:
        uris = {}
        for field in ("tokens_uri", "table_uri", "documents_uri"):
            local = Path(getattr(tf, field))
            uri = f"{bucket}/{local.relative_to(root.parents[1])}"
            data = local.read_bytes()
            if field == "tokens_uri" and tf.source == truncated_source:
                data = data[: len(data) // 2]
            with storage.atomic_write(uri) as f:
                f.write(data)
            uris[field] = uri
        on_s3.append(dataclasses.replace(tf, **uris))
    m = ctx.manifest
    return dataclasses.replace(ctx, layout=RunLayout.for_manifest(f"{bucket}/out", m.name, m.version)), on_s3


def _objects(prefix: str) -> dict[str, bytes]:
    """Every object under `prefix`, by its name relative to it."""
    bucket, key = storage.split_s3(prefix)
    listing = storage._s3().list_objects_v2(Bucket=bucket, Prefix=key + "/")
    objects = sorted(o["Key"] for o in listing.get("Contents", []))
    return {k[len(key) + 1 :]: storage._s3().get_object(Bucket=bucket, Key=k)["Body"].read() for k in objects}


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_mix_and_publish_from_caches_on_s3_write_the_same_files_as_locally(demo_mix, s3_bucket, s3_endpoint, monkeypatch):
    root, _ = demo_mix
    # Worker processes configure their S3 client from the environment.
    monkeypatch.setenv("CURATION_S3_ENDPOINT_URL", s3_endpoint)
    ctx, token_files = _on_s3(root, s3_bucket)
    result = mix_and_write(ctx, token_files)
    local = _files(root / "shards")
    assert len(local) >= 9 and _objects(ctx.layout.shards_dir) == local
    assert result.shards == _sidecars(root)
    # Workers read their shard's plan from storage; the job graph named only these files.
    plans = _objects(ctx.layout.cached("mix"))
    assert sorted(name.rsplit("/", 1)[-1] for name in plans) == [f"part-{i:05d}.parquet" for i in range(len(result.shards))]
    # The mix's pipeline publishes each source's documents too.
    local = _files(root / "documents")
    assert len(local) >= 4 and _objects(ctx.layout.documents_dir) == local
    markers = _files(root / "documents_complete")
    assert len(markers) == len(local) and _objects(ctx.layout.documents_markers_dir) == markers


def test_shard_gathers_its_documents_in_one_read_per_token_cache(demo_mix, s3_bucket, s3_endpoint, monkeypatch):
    root, _ = demo_mix
    # Worker processes configure their S3 client from the environment.
    monkeypatch.setenv("CURATION_S3_ENDPOINT_URL", s3_endpoint)
    ctx, token_files = _on_s3(root, s3_bucket)
    items = read_shard_plan(plan_mix(ctx, token_files).plan_uris[0])
    write_shard_plan(f"{s3_bucket}/plan.parquet", items)
    assert read_shard_plan(f"{s3_bucket}/plan.parquet") == items
    requests: list[str] = []
    client = storage._s3()
    count = lambda model, **_: requests.append(model.name)  # noqa: E731
    client.meta.events.register("before-call.s3", count)
    try:
        tokens = gather_shard_tokens(items, token_files, np.dtype("uint32"))
    finally:
        client.meta.events.unregister("before-call.s3", count)
    with StoredTokens(str(root / "shards" / "part-00000.npy"), "uint32") as written:
        assert np.array_equal(tokens, written[:])
    files = {ref.file for ref, _ in items}
    # Every demo cache is far under a read's cap and its documents lie closer than the gap limit, so one
    # ranged GET each, and no HEAD: the caches' sizes travel with them.
    assert requests == ["GetObject"] * len(files)
    assert len(items) > 10 * len(files)


def test_token_cache_cut_short_on_s3_stops_the_mix_naming_it_and_leaves_no_sidecar(demo_mix, s3_bucket, s3_endpoint, monkeypatch):
    root, _ = demo_mix
    monkeypatch.setenv("CURATION_S3_ENDPOINT_URL", s3_endpoint)
    ctx, token_files = _on_s3(root, s3_bucket, truncated_source="web")
    with pytest.raises(InputError, match=rf"{s3_bucket}/_cache/tokens/web/\w+\.tokens: (ends before token|cannot read S3 object \(InvalidRange\))"):
        mix_and_write(ctx, token_files)
    written = _objects(ctx.layout.shards_dir)
    local = _files(root / "shards")
    # A shard that read no cut cache may have finished; none that did looks finished.
    assert all(written[name] == local[name] for name in written)
    assert len([n for n in written if n.endswith(".json")]) < len([n for n in local if n.endswith(".json")])


def test_reads_join_near_documents_of_one_file_up_to_the_cap_and_serve_repeats_once():
    def ref(file, start, n_tokens):
        return DocRef(file, start, n_tokens, f"{file}:{start}", "web", None, None, None)

    # Shard order: the reads must still put each copy at its place in this order.
    items = [(ref(1, 0, 10), 0), (ref(0, 500, 50), 0), (ref(0, 0, 100), 0), (ref(0, 120, 30), 0),
             (ref(0, 0, 100), 1), (ref(0, 900, 400), 0),
             (ref(0, 560, 260), 0)]
    reads = plan_reads(items, max_gap_tokens=100, max_read_tokens=300)
    assert [(r.file, r.start, r.end) for r in reads] == [
        (0, 0, 150), (0, 500, 550), (0, 560, 820), (0, 900, 1300), (1, 0, 10)
    ]
    assert reads[0].copies == [(0, 100, 60), (0, 100, 190), (120, 30, 160)]
    assert reads[3].copies == [(900, 400, 290)]


def test_plan_on_workers_is_the_in_memory_reference_with_extra_copies_and_cluster_weights(demo_mix, tmp_path):
    root, _ = demo_mix
    ctx = prepare(load_manifest(root.parents[2] / "manifest.yaml"), ["--direct_num_workers=2"], log=lambda _: None)
    pools = curate(ctx)
    token_files = tokenize(ctx, pools, *decide(ctx, pools))
    tables = [pq.read_table(tf.table_uri, columns=["id", "n_tokens", "cluster_size"]).to_pylist() for tf in token_files]
    docs = {name: [] for name in REQUESTED}
    for tf, rows in zip(token_files, tables):
        docs[tf.source] += [(r["id"], r["n_tokens"], r["cluster_size"]) for r in rows]
    available = {name: sum(n for _, n, _ in source_docs) for name, source_docs in docs.items()}
    # Past the data, so that every source's documents get whole copies and some one more; web's by cluster.
    sources = {name: MixSourceConfig(tokens=int(1.6 * available[name]), max_repetition=2.5, weight_by_cluster_size=name == "web") for name in REQUESTED}
    manifest = dataclasses.replace(ctx.manifest, mix=MixConfig(sources=sources))
    m = ctx.manifest
    ctx = dataclasses.replace(
        ctx, loaded=dataclasses.replace(ctx.loaded, manifest=manifest), layout=RunLayout.for_manifest(str(tmp_path), m.name, m.version)
    )
    assert any(size > 1 for rows in tables for size in (r["cluster_size"] for r in rows))

    planned = [(ref.source, ref.id, repetition) for uri in plan_mix(ctx, token_files).plan_uris for ref, repetition in read_shard_plan(uri)]
    wanted = budgets(manifest, available)
    reference = [
        plan_source(name, m.seed, docs[name], wanted[name][0], 2.5, name == "web") for name in REQUESTED
    ]
    assert planned == shuffle_order(m.seed, (entry for plan in reference for entry in plan.entries()))
    assert all(1.5 < plan.repetition_factor < 1.7 and plan.max_copies >= 2 for plan in reference)
