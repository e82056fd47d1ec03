"""Rebuilding a real small release from its lock: byte-identical outputs, drifted inputs and altered shards named."""

from __future__ import annotations

import hashlib

import orjson
import pytest
from helpers_provenance import build_release, run_command

from curation.commands import regenerate_cmd
from curation.lock import locked_name, read_lock
from curation.regenerate import InputDriftError, drifted_files, regenerate
from mixes.shards import read_shard


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("regenerate"))


def flip_byte(path, position: int) -> None:
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_lock_records_inputs_tools_seeds_and_every_output(release):
    lock = read_lock(str(release / "lock.json"))
    assert {"apache-beam", "tokenizers", "fasttext-numpy2-wheel", "datatrove"} <= set(lock["libraries"])
    assert lock["seeds"]["mix"] == 7 and lock["eval_sets"] and lock["tokenizer"]["sha256"]
    assert all(e["size"] > 0 and len(e["sha256"]) == 64 for e in lock["inputs"])
    outputs = {e["uri"]: e["sha256"] for e in lock["outputs"]}
    for path in release.rglob("*"):
        rel = path.relative_to(release).as_posix()
        if path.is_file() and not rel.startswith("logs/") and rel != "lock.json":
            assert outputs.get(rel) == hashlib.sha256(path.read_bytes()).hexdigest(), rel


def test_changed_input_byte_is_named_before_anything_is_rebuilt(release):
    lock_path = release / "lock.json"
    changed = next(
        e["uri"] for e in read_lock(str(lock_path))["inputs"] if e["uri"].endswith("c4-sample.02.json.gz")
    )
    path = release.parents[2] / changed  # the lock names inputs relative to the manifest's folder
    original = path.read_bytes()
    flip_byte(path, len(original) // 2)
    try:
        assert [d.uri for d in drifted_files(read_lock(str(lock_path)), str(release))] == [changed]
        with pytest.raises(InputDriftError, match="c4-sample.02.json.gz: same size but sha256 differs"):
            regenerate(str(lock_path), ["--direct_num_workers=1"], log=lambda _: None)
        assert lock_path.exists() and not (release.parent / "1.0.0.previous").exists()
    finally:
        path.write_bytes(original)


def as_released_before_markers_moved(release) -> list[str]:
    """The release as an older version wrote it: each source's completion marker inside its documents folder,
    where its lock lists it. Returns the markers' old names."""
    lock_path = release / "lock.json"
    lock = orjson.loads(lock_path.read_bytes())
    moved = {}
    for marker in sorted((release / "documents_complete").iterdir()):
        old = release / "documents" / marker.stem / "_complete.json"
        marker.rename(old)
        moved[marker.relative_to(release).as_posix()] = old.relative_to(release).as_posix()
    (release / "documents_complete").rmdir()
    lock["outputs"] = [dict(e, uri=moved.get(e["uri"], e["uri"])) for e in lock["outputs"]]
    lock_path.write_bytes(orjson.dumps(lock, option=orjson.OPT_INDENT_2))
    return sorted(moved.values())


def test_rebuild_of_an_older_release_is_byte_identical_and_an_altered_shard_byte_is_named(release, capsys):
    old_markers = as_released_before_markers_moved(release)
    assert old_markers == [f"documents/{source}/_complete.json" for source in ("notes", "papers", "web")]
    shard = release / "shards" / "part-00001.npy"
    index = read_shard(shard).index.to_pylist()
    holder = next(i for i, row in enumerate(index) if row["start"] <= 300 < row["end"])
    flip_byte(shard, 4 * 300 + 1)  # a byte of token 300 (uint32 tokens)
    code = run_command(
        regenerate_cmd, str(release / "lock.json"), "--verify", "--quiet", "--direct_num_workers=1"
    )
    out = capsys.readouterr().out
    assert code == 1
    # The rebuild writes today's layout, compared under the names the older lock gives its files.
    assert (release / "documents_complete" / "web.json").read_bytes() == (
        release.parent / "1.0.0.previous" / "documents" / "web" / "_complete.json"
    ).read_bytes()
    assert (
        "1 output files differ; first: shards/part-00001.npy: rebuild matches the lock but the existing file was altered"
        in out
    )
    assert f"first differing document: #{holder} {index[holder]['doc_id']}" in out
    previous = release.parent / "1.0.0.previous"
    # The rebuilt lock is the older one but for its markers' names.
    old_lock, new_lock = (orjson.loads((folder / "lock.json").read_bytes()) for folder in (previous, release))
    as_locked = locked_name(old_lock)
    renamed = sorted((dict(e, uri=as_locked(e["uri"])) for e in new_lock.pop("outputs")), key=lambda e: e["uri"])
    assert renamed == sorted(old_lock.pop("outputs"), key=lambda e: e["uri"]) and new_lock == old_lock
    locked = {e["uri"]: e["sha256"] for e in read_lock(str(release / "lock.json"))["outputs"]}
    assert locked["shards/part-00001.npy"] == hashlib.sha256(shard.read_bytes()).hexdigest()
