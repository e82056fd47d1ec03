import csv
import gzip
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from helpers_tokenize import DOLMA2, GPT_NEOX, read_texts, require

from curation import storage
from curation.errors import InputError
from mixes.shards import (
    DocRecord,
    ShardMeta,
    ShardPaths,
    ShardWriter,
    fsl_instances,
    iter_documents,
    plan_shards,
    read_shard,
)
from mixes.tokenizer import dtype_for, load_tokenizer, with_document_markers


def _meta(tokenizer, dtype: str, format: str = "numpy") -> ShardMeta:
    return ShardMeta(
        dtype=dtype,
        vocab_size=tokenizer.vocab_size,
        tokenizer_sha256=tokenizer.sha256,
        eos_id=tokenizer.eos_id,
        bos_id=tokenizer.bos_id,
        manifest_name="test-mix",
        manifest_version="1.0.0",
        manifest_sha256="ab" * 32,
        format=format,
    )


@pytest.fixture(scope="module")
def dolma2():
    return load_tokenizer(require(DOLMA2))


@pytest.fixture(scope="module")
def web_texts():
    return read_texts("web", 120)


def _write(out_dir, shard_index, tokenizer, texts, dtype="uint32", format="numpy"):
    with ShardWriter(out_dir, shard_index, _meta(tokenizer, dtype, format)) as writer:
        for line, ids in enumerate(tokenizer.encode_batch(texts)):
            doc = DocRecord(
                f"cc-{line}", "web", repetition=line % 2, uri="s3://bucket/cc.jsonl.gz", line=line
            )
            writer.add(with_document_markers(ids, tokenizer), doc)


def test_round_trip_gives_back_a_fresh_tokenization_with_eos(tmp_path, dolma2, web_texts):
    _write(tmp_path, 0, dolma2, web_texts)
    shard = read_shard(tmp_path / "part-00000.npy", verify=True)
    documents = list(iter_documents(shard))
    assert len(documents) == len(web_texts)
    for (record, tokens), text in zip(documents, web_texts, strict=True):
        fresh = dolma2.encode_batch([text])[0].tolist() + [dolma2.eos_id]
        assert tokens.tolist() == fresh
    first, last = documents[0][0], documents[-1][0]
    assert first == DocRecord("cc-0", "web", 0, "s3://bucket/cc.jsonl.gz", 0, None)
    assert (last.doc_id, last.repetition, last.line) == (f"cc-{len(web_texts) - 1}", 1, len(web_texts) - 1)


def test_token_file_is_a_headerless_array_olmo_core_can_memmap(tmp_path, dolma2, web_texts):
    _write(tmp_path, 3, dolma2, web_texts)
    raw = np.memmap(tmp_path / "part-00003.npy", dtype=np.uint32, mode="r")
    expected = np.concatenate([with_document_markers(ids, dolma2) for ids in dolma2.encode_batch(web_texts)])
    assert np.array_equal(raw, expected)
    assert (tmp_path / "part-00003.npy").read_bytes()[:4] == int(expected[0]).to_bytes(4, "little")


def test_uint16_shard_of_olmo1_tokenizer_round_trips(tmp_path):
    neox = load_tokenizer(require(GPT_NEOX))
    texts = read_texts("web", 30)
    assert dtype_for(neox.vocab_size) == np.uint16
    _write(tmp_path, 0, neox, texts, dtype="uint16")
    assert (tmp_path / "part-00000.npy").stat().st_size == 2 * read_shard(
        tmp_path / "part-00000.json"
    ).sidecar["tokens"]
    for (_, tokens), ids in zip(
        iter_documents(read_shard(tmp_path / "part-00000.json")), neox.encode_batch(texts)
    ):
        assert tokens.tolist() == ids.tolist() + [neox.eos_id]


def test_sidecar_records_counts_tokenizer_manifest_and_file_digests(tmp_path, dolma2, web_texts):
    _write(tmp_path, 7, dolma2, web_texts)
    sidecar = json.loads((tmp_path / "part-00007.json").read_text())
    token_bytes = (tmp_path / "part-00007.npy").read_bytes()
    assert sidecar["tokens"] == len(token_bytes) // 4
    assert sidecar["documents"] == len(web_texts)
    assert sidecar["tokens_sha256"] == hashlib.sha256(token_bytes).hexdigest()
    assert sidecar["index_sha256"] == hashlib.sha256((tmp_path / "part-00007.index").read_bytes()).hexdigest()
    assert sidecar["boundaries_file"] == "part-00007.csv.gz"
    assert sidecar["boundaries_sha256"] == hashlib.sha256((tmp_path / "part-00007.csv.gz").read_bytes()).hexdigest()
    assert {k: sidecar[k] for k in ("dtype", "vocab_size", "eos_id", "bos_id", "shard_index")} == {
        "dtype": "uint32",
        "vocab_size": 100_278,
        "eos_id": 100_257,
        "bos_id": None,
        "shard_index": 7,
    }
    assert sidecar["tokenizer_sha256"] == hashlib.sha256(DOLMA2.read_bytes()).hexdigest()
    assert (sidecar["manifest_name"], sidecar["manifest_version"]) == ("test-mix", "1.0.0")


@pytest.mark.parametrize("format", ["numpy", "megatron"])
def test_same_documents_give_identical_bytes(tmp_path, dolma2, web_texts, format):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        _write(tmp_path / name, 0, dolma2, web_texts, format=format)
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert len(names) == 4 and names == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_csv_gz_rows_are_each_documents_boundaries_and_provenance(tmp_path, dolma2, web_texts):
    _write(tmp_path, 0, dolma2, web_texts)
    with gzip.open(tmp_path / "part-00000.csv.gz", "rt", newline="") as f:
        rows = list(csv.reader(f))
    index = read_shard(tmp_path / "part-00000.csv.gz").index.to_pylist()
    assert rows == [[str(r["start"]), str(r["end"]), r["doc_id"], r["uri"], str(r["line"])] for r in index]
    assert rows[0][:2] == ["0", rows[1][0]] and int(rows[-1][1]) == len(read_shard(tmp_path / "part-00000.npy").tokens)
    # No file name or time in the gzip header: the same documents give the same bytes on any day.
    header = (tmp_path / "part-00000.csv.gz").read_bytes()[:10]
    assert header[3] == 0 and header[4:8] == bytes(4)


def test_megatron_shard_holds_the_same_tokens_as_bin_with_an_idx(tmp_path, dolma2, web_texts):
    _write(tmp_path / "numpy", 0, dolma2, web_texts)
    _write(tmp_path / "megatron", 0, dolma2, web_texts, format="megatron")
    megatron = read_shard(tmp_path / "megatron" / "part-00000.idx", verify=True)
    assert sorted(p.name for p in (tmp_path / "megatron").iterdir()) == [
        "part-00000.bin", "part-00000.idx", "part-00000.index", "part-00000.json"
    ]
    # Megatron has no uint32: the dolma2 ids are written as int32, and the sidecar says so.
    assert megatron.sidecar["dtype"] == "int32" and megatron.sidecar["format"] == "megatron"
    numpy_shard = read_shard(tmp_path / "numpy" / "part-00000.npy")
    assert megatron.index.equals(numpy_shard.index)
    for (record, tokens), (numpy_record, numpy_tokens) in zip(
        iter_documents(megatron), iter_documents(numpy_shard), strict=True
    ):
        assert record == numpy_record and tokens.tolist() == numpy_tokens.tolist()


def test_changed_boundaries_file_fails_verification_naming_it(tmp_path, dolma2, web_texts):
    _write(tmp_path, 0, dolma2, web_texts[:5], format="megatron")
    idx = tmp_path / "part-00000.idx"
    idx.write_bytes(idx.read_bytes()[:-8] + bytes(8))
    with pytest.raises(ValueError, match="part-00000.idx: sha256 differs from its sidecar"):
        read_shard(tmp_path / "part-00000.json", verify=True)


def test_shard_of_an_older_format_version_is_refused_naming_it(tmp_path, dolma2, web_texts):
    _write(tmp_path, 0, dolma2, web_texts[:5])
    sidecar = tmp_path / "part-00000.json"
    sidecar.write_text(json.dumps(dict(json.loads(sidecar.read_text()), format_version=1)))
    with pytest.raises(ValueError, match="part-00000.json: shard format version 1, this code reads 2; write the mix again"):
        read_shard(tmp_path / "part-00000.npy")


def test_unknown_shard_format_is_refused(dolma2):
    with pytest.raises(ValueError, match="shard format must be one of numpy, megatron, got 'hdf5'"):
        _meta(dolma2, "uint32", "hdf5")


def test_ids_outside_the_vocabulary_are_refused(tmp_path, dolma2):
    with (
        ShardWriter(tmp_path, 0, _meta(dolma2, "uint32")) as writer,
        pytest.raises(ValueError, match="outside"),
    ):
        writer.add(np.array([5, 100_278]), DocRecord("bad", "web"))


def test_uint16_meta_for_dolma2_is_refused(dolma2):
    with pytest.raises(ValueError, match="uint16 cannot hold"):
        _meta(dolma2, "uint16")


def test_plan_shards_keeps_documents_whole_and_closes_before_passing_the_limit():
    entries = [("a", 40), ("b", 50), ("c", 20), ("d", 150), ("e", 10), ("f", 100)]
    shards = plan_shards(entries, shard_tokens=100)
    assert shards == [["a", "b"], ["c"], ["d"], ["e"], ["f"]]
    assert plan_shards(entries, shard_tokens=1_000) == [["a", "b", "c", "d", "e", "f"]]
    assert plan_shards([], shard_tokens=10) == []


def test_fsl_instances_count_each_file_separately_like_olmo_core(tmp_path, dolma2, web_texts):
    _write(tmp_path, 0, dolma2, web_texts[:50])
    _write(tmp_path, 1, dolma2, web_texts[50:])
    paths = [tmp_path / "part-00000.npy", tmp_path / "part-00001.npy"]
    arrays = [np.memmap(p, dtype=np.uint32, mode="r") for p in paths]
    sequence_length = 4096
    instances = fsl_instances(paths, "uint32", sequence_length)
    per_file = [len(a) // sequence_length for a in arrays]
    assert len(instances) == sum(per_file)
    assert np.array_equal(instances[0], arrays[0][:sequence_length])
    assert np.array_equal(instances[per_file[0]], arrays[1][:sequence_length])
    last = instances[len(instances) - 1]
    start = (per_file[1] - 1) * sequence_length
    assert np.array_equal(last, arrays[1][start : start + sequence_length])
    with pytest.raises(IndexError):
        instances[len(instances)]


def test_fsl_instances_drop_each_files_remainder(tmp_path, dolma2):
    ids = dolma2.encode_batch(read_texts("math_gsm8k", 40))
    with ShardWriter(tmp_path, 0, _meta(dolma2, "uint32")) as writer:
        writer.add(np.concatenate(ids[:20])[:10], DocRecord("q0", "math"))
    with ShardWriter(tmp_path, 1, _meta(dolma2, "uint32")) as writer:
        writer.add(np.concatenate(ids[20:])[:7], DocRecord("q1", "math"))
    instances = fsl_instances([tmp_path / "part-00000.npy", tmp_path / "part-00001.npy"], np.uint32, 4)
    # 10 // 4 + 7 // 4 = 3, not (10 + 7) // 4 = 4: instances never span files.
    assert len(instances) == 3
    assert instances[2].tolist() == np.concatenate(ids[20:])[:4].tolist()


@pytest.fixture
def scratch(tmp_path, monkeypatch):
    """The machine's scratch folder, where the writer keeps shards bound for S3 until they are whole."""
    monkeypatch.setenv("CURATION_SCRATCH", str(tmp_path / "scratch"))
    return Path(storage.scratch_dir("shards"))


def _bucket_keys(bucket_uri: str) -> list[str]:
    bucket, _ = storage.split_s3(bucket_uri)
    listing = storage._s3().list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def _read(uri: str) -> bytes:
    with storage.open_binary(uri) as f:
        return f.read()


def test_shard_written_to_s3_is_byte_identical_to_the_local_one(tmp_path, s3_bucket, scratch, dolma2, web_texts):
    _write(tmp_path, 4, dolma2, web_texts)
    _write(f"{s3_bucket}/shards", 4, dolma2, web_texts)
    local, remote = ShardPaths.of(tmp_path, 4), ShardPaths.of(f"{s3_bucket}/shards", 4)
    for local_file, remote_file in zip(
        (*local.data_files, local.sidecar), (*remote.data_files, remote.sidecar), strict=True
    ):
        assert _read(remote_file) == _read(local_file), remote_file
    assert _bucket_keys(s3_bucket) == [
        "shards/part-00004.csv.gz", "shards/part-00004.index", "shards/part-00004.json", "shards/part-00004.npy"
    ]
    assert list(scratch.iterdir()) == []
    documents = list(iter_documents(read_shard(remote.sidecar, verify=True)))
    for (record, tokens), (local_record, local_tokens) in zip(
        documents, iter_documents(read_shard(local.tokens)), strict=True
    ):
        assert record == local_record and np.array_equal(tokens, local_tokens)


def test_unfinished_shard_shows_only_temporary_names_locally_and_nothing_on_s3(tmp_path, s3_bucket, scratch, dolma2):
    for out_dir in (tmp_path / "local", f"{s3_bucket}/shards"):
        with ShardWriter(out_dir, 0, _meta(dolma2, "uint32")) as writer:
            writer.add(np.array([1, 2, dolma2.eos_id]), DocRecord("d0", "web"))
            if storage.is_s3(str(out_dir)):
                assert _bucket_keys(s3_bucket) == []
                assert len(list(scratch.iterdir())) == 1
            else:
                assert sorted(p.name for p in out_dir.iterdir()) == ["part-00000.npy.tmp"]
        assert read_shard(ShardPaths.of(out_dir, 0).sidecar, verify=True).sidecar["tokens"] == 3


@pytest.mark.parametrize("on_s3", [False, True], ids=["local", "s3"])
def test_failure_mid_shard_leaves_no_file_and_no_scratch(tmp_path, request, scratch, on_s3, dolma2, web_texts):
    out_dir = f"{request.getfixturevalue('s3_bucket')}/shards" if on_s3 else tmp_path / "shards"
    with (
        pytest.raises(RuntimeError, match="worker lost"),
        ShardWriter(out_dir, 0, _meta(dolma2, "uint32")) as writer,
    ):
        for line, ids in enumerate(dolma2.encode_batch(web_texts[:10])):
            writer.add(ids, DocRecord(f"cc-{line}", "web"))
        raise RuntimeError("worker lost")
    left = _bucket_keys(str(out_dir).rsplit("/", 1)[0]) if on_s3 else list(out_dir.iterdir())
    assert left == [] and list(scratch.iterdir()) == []
    with pytest.raises(FileNotFoundError, match="unfinished"):
        read_shard(ShardPaths.of(out_dir, 0).tokens)


def test_failed_upload_leaves_no_sidecar_and_no_scratch(s3_endpoint, scratch, dolma2):
    out_dir = "s3://no-such-bucket-for-shards/shards"
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="NoSuchBucket"):
        with ShardWriter(out_dir, 0, _meta(dolma2, "uint32")) as writer:
            writer.add(np.array([1, 2, dolma2.eos_id]), DocRecord("d0", "web"))
    assert list(scratch.iterdir()) == []


def test_rewritten_shard_replaces_the_earlier_one_on_s3(s3_bucket, scratch, dolma2, web_texts):
    out_dir = f"{s3_bucket}/shards"
    _write(out_dir, 0, dolma2, web_texts[:5])
    _write(out_dir, 0, dolma2, web_texts[5:9])
    shard = read_shard(f"{out_dir}/part-00000.json", verify=True)
    assert [r.doc_id for r, _ in iter_documents(shard)] == ["cc-0", "cc-1", "cc-2", "cc-3"]
    assert shard.sidecar["documents"] == 4


def test_fsl_instances_read_shards_on_s3_as_locally(tmp_path, s3_bucket, scratch, dolma2, web_texts):
    for out_dir in (tmp_path, f"{s3_bucket}/shards"):
        _write(out_dir, 0, dolma2, web_texts[:50])
        _write(out_dir, 1, dolma2, web_texts[50:])
    local = fsl_instances([tmp_path / "part-00000.npy", tmp_path / "part-00001.npy"], "uint32", 1024)
    remote = fsl_instances([f"{s3_bucket}/shards/part-0000{i}.npy" for i in (0, 1)], "uint32", 1024)
    assert len(remote) == len(local) > 2
    for i in (0, len(local) - 1):
        assert np.array_equal(remote[i], local[i])


def test_shard_cut_short_is_a_one_line_error_naming_it(tmp_path, dolma2, web_texts):
    _write(tmp_path, 0, dolma2, web_texts[:5])
    tokens = tmp_path / "part-00000.npy"
    shard = read_shard(tokens)
    tokens.write_bytes(tokens.read_bytes()[:8])
    with pytest.raises(InputError, match="part-00000.npy: ends before token .*cut short"):
        shard.tokens[0:10]
