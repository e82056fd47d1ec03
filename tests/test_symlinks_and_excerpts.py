"""Hostile input must not leak into a release: globs skip (and count) symlinks leading out of their folder,
and quarantine rows name a bad record's raw bytes by digest unless the source publishes excerpts."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import zstandard
from conftest import DEMO_DATA, TOKENIZER, write_manifest

from curation import storage
from curation.pipeline import run
from curation.readers.records import excerpt_digest
from mixes.manifest import load_manifest

SECRET = "SECRET-MARKER-7f3a"
BAD_LINE = b'{"id": "broken", "text": "BAD-LINE-MARKER-91c2'
C4_TEXTS = [orjson.loads(line)["text"] for line in gzip.decompress((DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes()).splitlines()]


def jsonl(*records: dict) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in records)


def hostile_input(tmp_path: Path) -> None:
    """data/ holds a real input with one bad line, a link to a file inside data/ (read always), and links to
    a secret file and a secret folder outside data/."""
    data, elsewhere = tmp_path / "data", tmp_path / "elsewhere"
    (data / "store").mkdir(parents=True)
    (elsewhere / "folder").mkdir(parents=True)
    (data / "real.jsonl").write_bytes(jsonl({"id": "a", "text": C4_TEXTS[0]}) + BAD_LINE + b"\n")
    (data / "store" / "inside.txt").write_bytes(jsonl({"id": "b", "text": C4_TEXTS[1]}))
    (data / "inside.jsonl").symlink_to("store/inside.txt")
    (elsewhere / "secret.jsonl").write_bytes(jsonl({"id": "s1", "text": f"{SECRET} file {C4_TEXTS[2]}"}))
    (elsewhere / "folder" / "more.jsonl").write_bytes(jsonl({"id": "s2", "text": f"{SECRET} folder {C4_TEXTS[3]}"}))
    (data / "secret.jsonl").symlink_to(elsewhere / "secret.jsonl")
    (data / "linked").symlink_to(elsewhere / "folder")


def run_release(tmp_path: Path, **source) -> dict:
    body = {
        "name": "hostile",
        "version": "1.0.0",
        "seed": 3,
        "sources": [{"name": "news", "paths": ["data/**/*.jsonl"], **source}],
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 50_000},
    }
    stats = run(load_manifest(write_manifest(tmp_path, body)), ["--direct_num_workers=1", "--direct_running_mode=in_memory"], log=lambda _: None)
    return stats["sources"]["news"]


def published_text(folder: Path) -> str:
    """Every output file's content as text, compressed ones (documents, Parquet ledgers) decoded."""
    parts = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix == ".zst":
            parts.append(zstandard.ZstdDecompressor().stream_reader(path.open("rb")).read().decode())
        elif path.suffix in (".parquet", ".index"):
            parts.append(repr(pq.read_table(path).to_pylist()))
        else:
            parts.append(path.read_bytes().decode("utf-8", "replace"))
    return "\n".join(parts)


def quarantine_excerpts(tmp_path: Path) -> list[str]:
    rows = pq.read_table(tmp_path / "out" / "hostile" / "1.0.0" / "ledger" / "quarantine.parquet").to_pylist()
    assert [(Path(r["uri"]).name, r["line"], r["reason"]) for r in rows] == [("real.jsonl", 2, "invalid_json")]
    return [r["excerpt"] for r in rows]


def test_release_skips_links_out_of_the_input_folder_and_digests_bad_records(tmp_path):
    hostile_input(tmp_path)
    stats = run_release(tmp_path)
    assert stats["skipped_symlinks"] == 2
    assert stats["read"] == 3, "real.jsonl's two lines and the link that stays inside data/"
    assert quarantine_excerpts(tmp_path) == [excerpt_digest(BAD_LINE)]
    published = published_text(tmp_path / "out")
    assert SECRET not in published and "BAD-LINE-MARKER" not in published


def test_release_follows_links_and_publishes_excerpts_when_the_source_says_so(tmp_path):
    hostile_input(tmp_path)
    stats = run_release(tmp_path, follow_symlinks=True, publish_excerpts=True)
    assert stats["skipped_symlinks"] == 0 and stats["read"] == 5
    assert quarantine_excerpts(tmp_path) == [BAD_LINE.decode()]
    published = published_text(tmp_path / "out")
    assert f"{SECRET} file" in published and f"{SECRET} folder" in published


def test_a_path_without_wildcards_is_read_even_as_a_link_out_of_its_folder(tmp_path):
    hostile_input(tmp_path)
    named = str(tmp_path / "data" / "secret.jsonl")
    assert storage.list_inputs(named, follow_symlinks=False).files == [named]
    listing = storage.list_inputs(str(tmp_path / "data" / "*.jsonl"), follow_symlinks=False)
    assert [Path(p).name for p in listing.files] == ["inside.jsonl", "real.jsonl"]
    assert [Path(p).name for p in listing.outside_links] == ["secret.jsonl"]
