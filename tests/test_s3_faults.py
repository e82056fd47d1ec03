"""S3 reads over a flaky network: a fault-injecting proxy (tests/fault_proxy.py) between boto3 and the moto
server cuts bodies off, answers SlowDown and returns short ranges; reads resume and give the bytes a clean
read gives, or fail in one line."""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
from pathlib import Path

import boto3
import orjson
import pytest
import zstandard
from conftest import DEMO_DATA, TOKENIZER, write_manifest
from fault_proxy import Drop, FaultProxy, Short, SlowDown
from helpers_io import REPO_DATA, source, split
from test_pipeline import output_digests

from curation import storage
from curation.errors import InputError
from curation.pipeline import run
from curation.readers import read_source_file
from mixes.manifest import load_manifest

PARQUET = REPO_DATA / "universal_fdedup__sample1.parquet"


@pytest.fixture
def moto(s3_endpoint, request):
    """A client straight to moto (no faults), for putting objects, and a fresh bucket named after the test."""
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:60].strip("-")
    client.create_bucket(Bucket=bucket)
    return client, bucket


@pytest.fixture
def proxy(s3_endpoint):
    """The fault proxy in front of moto, as the endpoint of every S3 call the code under test makes."""
    with FaultProxy(s3_endpoint) as running:
        storage.configure_s3(endpoint_url=running.endpoint)
        yield running
    storage.configure_s3(endpoint_url=s3_endpoint)


def _objects() -> dict[str, bytes]:
    """Real inputs in each streamed format: gzip and zstd JSONL, plain JSONL."""
    return {
        "papers.jsonl.gz": (DEMO_DATA / "papers" / "arxiv-abstracts-head1000.jsonl.gz").read_bytes(),
        "code.jsonl.zst": (DEMO_DATA / "code" / "github-permissive-00.jsonl.zst").read_bytes(),
        "wiki.jsonl": gzip.decompress(
            (DEMO_DATA / "wiki" / "wikitext-2-valid-articles.jsonl.gz").read_bytes()
        ),
    }


def _documents(uri: str, **overrides) -> list[tuple]:
    docs, quarantined = split(read_source_file(source(**overrides), uri))
    assert quarantined == []
    return [(d.id, d.text, d.provenance.line, d.metadata) for d in docs]


@pytest.mark.parametrize("name", sorted(_objects()))
def test_cut_off_bodies_resume_to_the_clean_documents(name, moto, proxy):
    client, bucket = moto
    data = _objects()[name]
    client.put_object(Bucket=bucket, Key=name, Body=data)
    uri = f"s3://{bucket}/{name}"
    clean = _documents(uri)
    # Cut at the first byte and one byte in, a short range, then cuts mid-object and one byte before the end.
    middle = 1001 + len(data) // 2
    cuts = [Drop(0), Drop(1), Short(1000), Drop(len(data) // 2), Drop(len(data) - middle - 1)]
    proxy.faults = lambda r: cuts[r.nth] if r.method == "GET" and r.nth < len(cuts) else None
    proxy.requests.clear()
    assert _documents(uri) == clean
    # Each GET after a fault asks for the rest of the object from the last byte received.
    starts = [g.range for g in proxy.gets(f"/{bucket}/{name}")]
    assert starts == [None, None] + [f"bytes={s}-{len(data) - 1}" for s in (1, 1001, middle, len(data) - 1)]


def _wiki_parquet() -> bytes:
    """Real articles as Parquet in small row groups, so a read takes many ranges past the 1 MiB buffer."""
    import io

    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    lines = gzip.decompress(
        (DEMO_DATA / "wiki" / "wikitext-2-valid-articles.jsonl.gz").read_bytes()
    ).splitlines()
    out = io.BytesIO()
    pq.write_table(
        pa.Table.from_pylist([orjson.loads(line) for line in lines]),
        out,
        row_group_size=8,
        compression="none",
    )
    return out.getvalue()


def test_parquet_ranges_cut_off_or_short_are_read_again(moto, proxy):
    client, bucket = moto
    data = _wiki_parquet()
    client.put_object(Bucket=bucket, Key="wiki.parquet", Body=data)
    uri = f"s3://{bucket}/wiki.parquet"
    clean = _documents(uri)
    clean_gets = len(proxy.gets(f"/{bucket}/wiki.parquet"))
    assert len(data) > 1024 * 1024 and clean_gets > 1
    proxy.requests.clear()
    # Every range GET first meets a fault: cut off (at the start or a few bytes in) or short.
    faults = [Drop(0), Drop(7), Short(3)]
    proxy.faults = lambda r: faults[r.nth // 2 % 3] if r.method == "GET" and r.nth % 2 == 0 else None
    assert _documents(uri) == clean
    assert len(proxy.gets(f"/{bucket}/wiki.parquet")) >= 2 * clean_gets


def test_slow_down_answers_are_retried(moto, proxy):
    client, bucket = moto
    data = (DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes()
    client.put_object(Bucket=bucket, Key="c4.jsonl.gz", Body=data)
    uri = f"s3://{bucket}/c4.jsonl.gz"
    proxy.faults = lambda r: SlowDown() if r.nth < 2 else None
    assert storage.stat(uri).size == len(data)
    assert storage.list_files(f"s3://{bucket}/c4*") == [uri]
    with storage.open_binary(uri) as f:
        assert f.read() == data
    assert [r.method for r in proxy.requests if r.method != "HEAD"].count("GET") == 3 + 3  # list + object


def test_a_read_that_keeps_failing_is_one_line_naming_the_object(moto, proxy, monkeypatch):
    client, bucket = moto
    data = (DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes()
    client.put_object(Bucket=bucket, Key="c4.jsonl.gz", Body=data)
    uri = f"s3://{bucket}/c4.jsonl.gz"
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    storage.configure_s3(endpoint_url=proxy.endpoint)
    proxy.faults = lambda r: Drop(100 if r.nth == 0 else 0) if r.method == "GET" else None
    with pytest.raises(InputError) as failed, storage.open_binary(uri) as f:
        f.read()
    message = str(failed.value)
    assert message.startswith(f"{uri}: S3 read failed 3 times in a row at byte 100 ") and "\n" not in message
    assert "AWS_MAX_ATTEMPTS" in message
    # The first GET's body broke after 100 bytes: the first of the three failures in a row.
    assert len(proxy.gets(f"/{bucket}/c4.jsonl.gz")) == 3


def test_an_object_replaced_mid_read_fails_in_one_line(moto, proxy):
    client, bucket = moto
    plain = gzip.decompress((DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes())
    client.put_object(Bucket=bucket, Key="c4.jsonl", Body=plain)
    uri = f"s3://{bucket}/c4.jsonl"

    def replace_before_resuming(request):
        if request.method != "GET":
            return None
        if request.nth == 1:  # the GET that resumes: a new version is in place by then
            client.put_object(Bucket=bucket, Key="c4.jsonl", Body=plain.upper())
        return Drop(5000) if request.nth == 0 else None

    proxy.faults = replace_before_resuming
    with pytest.raises(InputError) as failed:
        _documents(uri)
    message = str(failed.value)
    assert message.startswith(f"{uri}: the object changed while being read") and "\n" not in message


def test_the_digest_taken_while_reading_is_the_object_sha256(moto, proxy):
    """A digest survives resumed reads, and covers what a reader left unread (a Parquet footer read first)."""
    client, bucket = moto
    objects = {**_objects(), "sample.parquet": PARQUET.read_bytes(), "wiki.parquet": _wiki_parquet()}
    proxy.faults = lambda r: Drop(3000) if r.method == "GET" and r.nth == 0 else None
    for name, data in objects.items():
        client.put_object(Bucket=bucket, Key=name, Body=data)
        uri = f"s3://{bucket}/{name}"
        digest = storage.ReadDigest()
        docs, _ = split(
            read_source_file(
                source(text_field="contents" if name == "sample.parquet" else "text"), uri, digest
            )
        )
        assert docs
        found = digest.finish(uri)
        assert (found.size, found.sha256) == (len(data), hashlib.sha256(data).hexdigest()), name
        assert found.etag == storage.stat(uri).etag


def test_zstd_object_cut_inside_a_frame_header_resumes(moto, proxy):
    """A cut a few bytes in lands inside the first frame's header, which the frame walker reads piecemeal."""
    client, bucket = moto
    plain = (DEMO_DATA / "evals" / "gsm8k-test.jsonl").read_bytes()
    data = zstandard.ZstdCompressor(write_checksum=True).compress(plain)
    client.put_object(Bucket=bucket, Key="g.jsonl.zst", Body=data)
    uri = f"s3://{bucket}/g.jsonl.zst"
    proxy.faults = lambda r: Drop(r.nth + 5) if r.method == "GET" and r.nth < 4 else None
    with storage.open_decompressed(uri) as f:
        assert f.read() == plain


def _s3_run(tmp_path, bucket: str, proxy, monkeypatch) -> Path:
    """A curate + mix + lock run of real web and papers files read from the bucket through the proxy."""
    # Worker processes configure their S3 client from the environment.
    monkeypatch.setenv("CURATION_S3_ENDPOINT_URL", proxy.endpoint)
    body = {
        "name": "flaky",
        "version": "1.0.0",
        "seed": 3,
        "sources": [
            {"name": "web", "paths": [f"s3://{bucket}/web/*.json.gz"]},
            {"name": "papers", "paths": [f"s3://{bucket}/papers/*.jsonl.gz"]},
        ],
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 50_000},
    }
    run(load_manifest(write_manifest(tmp_path, body)), ["--direct_num_workers=2"], log=lambda _: None)
    return tmp_path / "out" / "flaky" / "1.0.0"


S3_INPUTS = {
    "web/c4-sample.01.json.gz": DEMO_DATA / "web" / "c4-sample.01.json.gz",
    "web/c4-sample.02.json.gz": DEMO_DATA / "web" / "c4-sample.02.json.gz",
    "papers/arxiv.jsonl.gz": DEMO_DATA / "papers" / "arxiv-abstracts-head1000.jsonl.gz",
}


def test_a_run_streams_each_s3_input_once_and_a_flaky_network_changes_no_byte(
    tmp_path, moto, proxy, monkeypatch
):
    client, bucket = moto
    for key, path in S3_INPUTS.items():
        client.put_object(Bucket=bucket, Key=key, Body=path.read_bytes())
    root = _s3_run(tmp_path, bucket, proxy, monkeypatch)
    # One GET per input: curate hashed each while reading it, and the lock read none again.
    assert {key: len(proxy.gets(f"/{bucket}/{key}")) for key in S3_INPUTS} == dict.fromkeys(S3_INPUTS, 1)
    lock = orjson.loads((root / "lock.json").read_bytes())
    assert {e["uri"]: (e["size"], e["sha256"], e["etag"]) for e in lock["inputs"]} == {
        f"s3://{bucket}/{key}": (
            path.stat().st_size,
            hashlib.sha256(path.read_bytes()).hexdigest(),
            storage.stat(f"s3://{bucket}/{key}").etag,
        )
        for key, path in S3_INPUTS.items()
    }
    clean = output_digests(root)
    shutil.rmtree(tmp_path / "out")
    proxy.requests.clear()
    # Now every listing, stat and object read first meets SlowDown, and every object's body is cut mid-way.
    sizes = {f"/{bucket}/{key}": path.stat().st_size for key, path in S3_INPUTS.items()}
    proxy.faults = lambda r: (
        SlowDown()
        if r.nth == 0
        else Drop(sizes[r.key] // 3)
        if r.nth == 1 and r.key in sizes and r.method == "GET"
        else None
    )
    assert output_digests(_s3_run(tmp_path, bucket, proxy, monkeypatch)) == clean
    assert {key: len(proxy.gets(f"/{bucket}/{key}")) for key in S3_INPUTS} == dict.fromkeys(S3_INPUTS, 3)
