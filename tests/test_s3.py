"""Storage, readers and writers against S3 as served by moto in server mode on loopback."""

import gzip
import os
import urllib.request

import apache_beam as beam
import helpers_io
import pytest
import zstandard
from helpers_io import REPO_DATA, source, split

from curation import storage
from curation.engine import pipeline_options, run_pipeline
from curation.errors import InputError
from curation.readers import read_source_file
from curation.writers import DocumentWriter

s3_endpoint = helpers_io.s3_endpoint
s3_bucket = helpers_io.s3_bucket
C4_SAMPLE = REPO_DATA / "c4-sample.01.json.gz"


def _put(uri: str, data: bytes) -> None:
    bucket, key = storage.split_s3(uri)
    storage._s3().put_object(Bucket=bucket, Key=key, Body=data)


def _set_moto_auth(endpoint: str, free_requests: bytes) -> None:
    """moto's server-mode switch: after `free_requests` requests, only credentials moto knows are accepted."""
    request = urllib.request.Request(
        f"{endpoint}/moto-api/reset-auth",
        data=free_requests,
        method="POST",
        headers={"Content-Type": "text/plain"},
    )
    urllib.request.urlopen(request).close()


def test_list_files_globs_keys_under_a_prefix(s3_bucket):
    for key in ["cc/a.jsonl.gz", "cc/b.jsonl.gz", "cc/2024/c.jsonl.gz", "cc/notes.txt", "other/d.jsonl.gz"]:
        _put(f"{s3_bucket}/{key}", b"x")
    assert storage.list_files(f"{s3_bucket}/cc/*.jsonl.gz") == [
        f"{s3_bucket}/cc/a.jsonl.gz",
        f"{s3_bucket}/cc/b.jsonl.gz",
    ]
    assert storage.list_files(f"{s3_bucket}/cc/**/*.jsonl.gz") == [
        f"{s3_bucket}/cc/2024/c.jsonl.gz",
        f"{s3_bucket}/cc/a.jsonl.gz",
        f"{s3_bucket}/cc/b.jsonl.gz",
    ]
    assert storage.list_files(f"{s3_bucket}/cc/?.jsonl.gz") == [
        f"{s3_bucket}/cc/a.jsonl.gz",
        f"{s3_bucket}/cc/b.jsonl.gz",
    ]
    with pytest.raises(InputError, match="warc"):
        storage.list_files(f"{s3_bucket}/cc/*.warc.gz")


def test_s3_and_local_globs_match_the_same_names(s3_bucket, tmp_path):
    """Character classes, negation and hidden names behave the same on S3 keys as on local paths."""
    keys = [
        "cc/part-1.jsonl.gz",
        "cc/part-2.jsonl.gz",
        "cc/part-a.jsonl.gz",
        "cc/.part-1.jsonl.gz",
        "cc/sub/part-3.jsonl.gz",
    ]
    for key in keys:
        _put(f"{s3_bucket}/{key}", b"x")
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"x")
    expected = {
        "cc/part-[12].jsonl.gz": ["cc/part-1.jsonl.gz", "cc/part-2.jsonl.gz"],
        "cc/part-[!1].jsonl.gz": ["cc/part-2.jsonl.gz", "cc/part-a.jsonl.gz"],
        "cc/part-[0-9].jsonl.gz": ["cc/part-1.jsonl.gz", "cc/part-2.jsonl.gz"],
        "cc/*.jsonl.gz": ["cc/part-1.jsonl.gz", "cc/part-2.jsonl.gz", "cc/part-a.jsonl.gz"],
        "cc/**/part-[3].jsonl.gz": ["cc/sub/part-3.jsonl.gz"],
    }
    for pattern, names in expected.items():
        assert storage.list_files(f"{s3_bucket}/{pattern}") == [f"{s3_bucket}/{n}" for n in names], pattern
        assert storage.list_files(f"{tmp_path}/{pattern}") == [f"{tmp_path}/{n}" for n in names], pattern


def test_streaming_read_of_gzip_and_zstd_objects_gives_the_local_documents(s3_bucket):
    plain = gzip.decompress(C4_SAMPLE.read_bytes())
    _put(f"{s3_bucket}/c4.jsonl.gz", C4_SAMPLE.read_bytes())
    _put(f"{s3_bucket}/c4.jsonl.zst", zstandard.ZstdCompressor().compress(plain))
    local, _ = split(read_source_file(source(), str(C4_SAMPLE)))
    for uri in (f"{s3_bucket}/c4.jsonl.gz", f"{s3_bucket}/c4.jsonl.zst"):
        docs, quarantined = split(read_source_file(source(), uri))
        assert quarantined == []
        assert [(d.text, d.provenance.line) for d in docs] == [(d.text, d.provenance.line) for d in local]
        assert docs[0].provenance.uri == uri


def test_parquet_object_is_read_by_ranges(s3_bucket):
    uri = f"{s3_bucket}/sample.parquet"
    _put(uri, (REPO_DATA / "universal_fdedup__sample1.parquet").read_bytes())
    docs, quarantined = split(read_source_file(source(text_field="contents"), uri))
    assert (len(docs), quarantined) == (5, [])


def test_stat_and_sha256_of_an_object(s3_bucket):
    data = C4_SAMPLE.read_bytes()
    uri = f"{s3_bucket}/c4.jsonl.gz"
    _put(uri, data)
    info = storage.stat(uri)
    assert info.size == len(data) and info.etag
    import hashlib

    assert storage.sha256(uri) == hashlib.sha256(data).hexdigest()
    assert storage.exists(uri)
    storage.remove(uri)
    assert not storage.exists(uri)


def test_atomic_write_uploads_in_parts_and_completes(s3_bucket):
    part_size = 5 * 1024 * 1024  # S3's smallest part
    payload = bytes(range(256)) * (11 * 1024 * 1024 // 256)
    uri = f"{s3_bucket}/big.bin"
    with storage.atomic_write(uri, part_size_bytes=part_size) as f:
        for start in range(0, len(payload), 1_000_000):
            f.write(payload[start : start + 1_000_000])
        assert not storage.exists(uri)
    bucket, key = storage.split_s3(uri)
    head = storage._s3().head_object(Bucket=bucket, Key=key)
    assert head["ETag"].strip('"').endswith("-3")  # a three-part multipart object
    with storage.open_binary(uri) as f:
        assert f.read() == payload


def test_atomic_write_takes_a_numpy_array_across_parts(s3_bucket):
    import numpy as np

    part_size = 5 * 1024 * 1024  # S3's smallest part
    tokens = np.arange(6 * 1024 * 1024 // 4, dtype="<u4").reshape(-1, 1024)
    uri = f"{s3_bucket}/tokens.bin"
    with storage.atomic_write(uri, part_size_bytes=part_size) as f:
        assert f.write(tokens) == tokens.nbytes
    bucket, key = storage.split_s3(uri)
    assert storage._s3().head_object(Bucket=bucket, Key=key)["ETag"].strip('"').endswith("-2")
    with storage.open_binary(uri) as f:
        assert f.read() == tokens.tobytes()


def test_atomic_write_aborts_the_upload_when_the_block_raises(s3_bucket):
    uri = f"{s3_bucket}/failed.bin"
    with pytest.raises(RuntimeError), storage.atomic_write(uri, part_size_bytes=5 * 1024 * 1024) as f:
        f.write(b"\0" * (6 * 1024 * 1024))
        raise RuntimeError("worker died")
    bucket, _ = storage.split_s3(uri)
    assert not storage.exists(uri)
    assert storage._s3().list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_document_writer_rolls_files_on_s3(s3_bucket):
    docs, _ = split(read_source_file(source(), str(C4_SAMPLE)))
    with DocumentWriter(f"{s3_bucket}/pool/web", "parquet", target_bytes=10_000) as writer:
        for d in docs:
            writer.write(d.to_dict())
    files = writer.close()
    assert len(files) > 1 and storage.list_files(f"{s3_bucket}/pool/web-*.parquet") == files
    back = [d for f in files for d in split(read_source_file(source(), f))[0]]
    assert [d.text for d in back] == [d.text for d in docs]


def test_missing_key_and_bucket_are_input_errors(s3_bucket):
    with pytest.raises(InputError, match="NoSuchKey"):
        list(read_source_file(source(on_error="quarantine"), f"{s3_bucket}/absent.jsonl.gz"))
    with pytest.raises(InputError):
        storage.list_files("s3://no-such-bucket-here/*.jsonl")


def test_object_without_permission_is_an_input_error(s3_bucket, s3_endpoint):
    uri = f"{s3_bucket}/c4.jsonl.gz"
    _put(uri, C4_SAMPLE.read_bytes())
    # The fixture's "testing" keys are unknown to moto's IAM, so every request is now refused with a 403.
    _set_moto_auth(s3_endpoint, b"0")
    try:
        with pytest.raises(
            InputError, match=r"c4.jsonl.gz: cannot read S3 object \((InvalidAccessKeyId|AccessDenied)\)"
        ):
            list(read_source_file(source(), uri))
    finally:
        _set_moto_auth(s3_endpoint, b"inf")


def test_workers_reach_s3_through_the_pipeline_options_alone(s3_bucket, s3_endpoint, tmp_path, monkeypatch):
    uris = [f"{s3_bucket}/part-{i}.txt" for i in range(4)]
    for i, uri in enumerate(uris):
        _put(uri, f"part {i}".encode())
    # The worker processes inherit this environment: with no endpoint or keys in it, the options are all
    # they have.
    for name in ("CURATION_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    options = pipeline_options(
        [
            "--s3_endpoint_url",
            s3_endpoint,
            "--s3_region_name=eu-west-3",
            "--s3_access_key_id=testing",
            "--s3_secret_access_key=testing",
            "--direct_num_workers=2",
            "--direct_running_mode=multi_processing",
        ]
    )

    def read_in_worker(uri: str) -> str:
        return f"{os.getpid()} {storage._s3().meta.region_name} {storage.open_binary(uri).read().decode()}"

    out = tmp_path / "read"
    run_pipeline(
        options,
        lambda p: (
            p
            | beam.Create(uris)
            | beam.Map(read_in_worker)
            | beam.io.WriteToText(str(out), shard_name_template="")
        ),
    )
    lines = [line.split(" ", 2) for line in out.read_text().splitlines()]
    assert sorted(text for _, _, text in lines) == [f"part {i}" for i in range(4)]
    assert {region for _, region, _ in lines} == {"eu-west-3"}
    assert str(os.getpid()) not in {pid for pid, _, _ in lines}, "worker processes must read the objects"
