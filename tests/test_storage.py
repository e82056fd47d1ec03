import bz2
import gzip
import hashlib
import lzma
import os

import pytest
import zstandard
from helpers_io import REPO_DATA

from curation import storage
from curation.errors import InputError


@pytest.fixture
def tree(tmp_path):
    for rel in [
        "a/x-1.jsonl.gz",
        "a/x-2.jsonl.gz",
        "a/b/x-3.jsonl.gz",
        "a/b/c/x-4.jsonl.gz",
        "a/y-1.parquet",
    ]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    return tmp_path


def test_list_files_globs_one_level_with_star_and_question_mark(tree):
    assert storage.list_files(str(tree / "a/x-*.jsonl.gz")) == [
        str(tree / "a/x-1.jsonl.gz"),
        str(tree / "a/x-2.jsonl.gz"),
    ]
    assert storage.list_files(str(tree / "a/?-1.*")) == [
        str(tree / "a/x-1.jsonl.gz"),
        str(tree / "a/y-1.parquet"),
    ]


def test_list_files_double_star_crosses_folders_and_sorts(tree):
    found = storage.list_files(str(tree / "a/**/*.jsonl.gz"))
    assert found == sorted(found)
    assert [os.path.basename(p) for p in found] == [
        "x-4.jsonl.gz",
        "x-3.jsonl.gz",
        "x-1.jsonl.gz",
        "x-2.jsonl.gz",
    ]


def test_list_files_raises_input_error_naming_a_pattern_that_matches_nothing(tree):
    pattern = str(tree / "a/*.warc.gz")
    with pytest.raises(InputError, match=r"\*\.warc\.gz"):
        storage.list_files(pattern)
    with pytest.raises(InputError):
        storage.list_files(str(tree / "missing.jsonl"))


def test_glob_to_regex_keeps_single_star_inside_one_segment():
    assert storage.glob_to_regex("cc/*.gz").match("cc/a.gz")
    assert not storage.glob_to_regex("cc/*.gz").match("cc/sub/a.gz")
    assert storage.glob_to_regex("cc/**/*.gz").match("cc/a.gz")
    assert storage.glob_to_regex("cc/**/*.gz").match("cc/x/y/a.gz")


@pytest.mark.parametrize(
    "suffix,compress",
    [
        ("", lambda b: b),
        (".gz", gzip.compress),
        (".zst", lambda b: zstandard.ZstdCompressor().compress(b)),
        (".bz2", bz2.compress),
        (".xz", lzma.compress),
    ],
)
def test_open_decompressed_chooses_codec_by_extension(tmp_path, suffix, compress):
    payload = (REPO_DATA / "c4-sample.01.json.gz").read_bytes()
    plain = gzip.decompress(payload)
    path = tmp_path / f"docs.jsonl{suffix}"
    path.write_bytes(compress(plain))
    with storage.open_decompressed(str(path)) as f:
        assert f.read() == plain


def test_open_decompressed_reads_every_gzip_member_and_zstd_frame(tmp_path):
    gz = tmp_path / "two.jsonl.gz"
    gz.write_bytes(gzip.compress(b'{"a":1}\n') + gzip.compress(b'{"a":2}\n'))
    zst = tmp_path / "two.jsonl.zst"
    cctx = zstandard.ZstdCompressor()
    zst.write_bytes(cctx.compress(b'{"a":1}\n') + cctx.compress(b'{"a":2}\n'))
    for path in (gz, zst):
        with storage.open_decompressed(str(path)) as f:
            assert f.readlines() == [b'{"a":1}\n', b'{"a":2}\n']


def test_open_binary_of_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="nope.jsonl"):
        storage.open_binary(str(tmp_path / "nope.jsonl"))


def test_stat_sha256_exists_remove_on_a_real_file(tmp_path):
    path = tmp_path / "sample.parquet"
    data = (REPO_DATA / "universal_fdedup__sample1.parquet").read_bytes()
    path.write_bytes(data)
    info = storage.stat(str(path))
    assert (info.size, info.etag) == (len(data), None)
    assert storage.sha256(str(path)) == hashlib.sha256(data).hexdigest()
    assert storage.exists(str(path))
    storage.remove(str(path))
    assert not storage.exists(str(path))
    storage.remove(str(path))


@pytest.mark.parametrize(
    ("recorded", "refusal"),
    [(10, "longer than the 10 bytes recorded"), (10**9, "bytes read, 1,000,000,000 recorded")],
)
def test_sha256_checks_the_bytes_read_against_the_recorded_size(tmp_path, recorded, refusal):
    path = tmp_path / "sample.parquet"
    path.write_bytes((REPO_DATA / "universal_fdedup__sample1.parquet").read_bytes())
    with pytest.raises(InputError, match=f"sample.parquet: .*{refusal}"):
        storage.sha256(str(path), recorded)


def test_atomic_write_publishes_only_on_success(tmp_path):
    target = tmp_path / "out" / "part-00000.jsonl"
    with storage.atomic_write(str(target)) as f:
        f.write(b"hello\n")
        assert not target.exists()
    assert target.read_bytes() == b"hello\n"


def test_atomic_write_leaves_nothing_when_the_block_raises(tmp_path):
    target = tmp_path / "part-00000.jsonl"
    with pytest.raises(ValueError), storage.atomic_write(str(target)) as f:
        f.write(b"half a document")
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_an_existing_file_whole(tmp_path):
    target = tmp_path / "ledger.jsonl"
    target.write_bytes(b"old\n")
    with pytest.raises(RuntimeError), storage.atomic_write(str(target)) as f:
        f.write(b"new")
        raise RuntimeError
    assert target.read_bytes() == b"old\n"


def test_join_builds_local_paths_and_s3_uris():
    assert (
        storage.join("s3://bucket/pools/", "web", "/part-1.jsonl.zst")
        == "s3://bucket/pools/web/part-1.jsonl.zst"
    )
    assert storage.join("/data/pools", "web", "part-1.jsonl.zst") == "/data/pools/web/part-1.jsonl.zst"
