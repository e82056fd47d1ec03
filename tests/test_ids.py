"""Ids name documents in ledgers, dedupe, verdicts and the audit index: a repeated id keeps its first occurrence
in input order and the later ones are quarantined (or renamed under `ids: derive`); unusable ids never pass."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from conftest import DEMO_DATA, TOKENIZER, write_manifest

from curation.errors import InputError
from curation.pipeline import run
from mixes.manifest import load_manifest

C4_TEXTS = [orjson.loads(line)["text"] for line in gzip.decompress((DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes()).splitlines()]


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in records)))


def manifest(tmp_path: Path, paths: list[str], **source) -> Path:
    body = {
        "name": "ids",
        "version": "1.0.0",
        "seed": 3,
        "sources": [{"name": "news", "paths": paths, **source}],
        "dedupe": {"exact": {"scope": "global"}},
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 50_000},
    }
    return write_manifest(tmp_path, body)


def run_it(path: Path) -> dict:
    return run(load_manifest(path), ["--direct_num_workers=1", "--direct_running_mode=in_memory"], log=lambda _: None)


def release(tmp_path: Path) -> Path:
    return tmp_path / "out" / "ids" / "1.0.0"


def quarantine_rows(tmp_path: Path) -> list[dict]:
    return pq.read_table(release(tmp_path) / "ledger" / "quarantine.parquet").to_pylist()


def tokenized_ids(tmp_path: Path) -> list[str]:
    """Ids of the documents in the published documents files, in order."""
    import zstandard

    ids = []
    for part in sorted((release(tmp_path) / "documents" / "news").glob("*.jsonl.zst")):
        data = zstandard.ZstdDecompressor().stream_reader(part.open("rb")).read()
        ids.extend(orjson.loads(line)["id"] for line in data.splitlines())
    return ids


def assert_accounted(stats: dict) -> dict:
    s = stats["sources"]["news"]
    assert s["read"] == s["kept_documents"] + s["rejected"] + s["quarantined"]
    return s


def test_ids_repeated_in_a_later_file_and_within_a_file_keep_their_first_occurrence(tmp_path):
    records = [{"id": f"doc-{i}", "text": t} for i, t in enumerate(C4_TEXTS[:6])]
    write_jsonl(tmp_path / "data" / "a.jsonl.gz", records)
    # b repeats doc-1 verbatim, reuses doc-2's id for other text, and repeats its own new id on line 4.
    write_jsonl(
        tmp_path / "data" / "b.jsonl.gz",
        [records[1], {"id": "doc-2", "text": C4_TEXTS[7]}, {"id": "new", "text": C4_TEXTS[8]}, {"id": "new", "text": C4_TEXTS[9]}],
    )
    s = assert_accounted(run_it(manifest(tmp_path, ["data/*.jsonl.gz"])))
    assert s["quarantine_reasons"] == {"duplicate_id": 3}
    rows = sorted((Path(q["uri"]).name, q["line"], q["reason"]) for q in quarantine_rows(tmp_path))
    assert rows == [("b.jsonl.gz", 1, "duplicate_id"), ("b.jsonl.gz", 2, "duplicate_id"), ("b.jsonl.gz", 4, "duplicate_id")]
    first = {q["line"]: q["excerpt"] for q in quarantine_rows(tmp_path)}
    assert "a.jsonl.gz line 2" in first[1] and "b.jsonl.gz line 3" in first[4]
    ids = tokenized_ids(tmp_path)
    assert sorted(ids) == sorted([f"doc-{i}" for i in range(6)] + ["new"])
    assert len(ids) == len(set(ids)), "exactly one copy of every id survives"


def test_derived_ids_keep_every_record_and_let_exact_dedupe_keep_one_verbatim_copy(tmp_path):
    records = [{"id": f"doc-{i}", "text": t} for i, t in enumerate(C4_TEXTS[:3])]
    write_jsonl(tmp_path / "data" / "a.jsonl.gz", records + [records[0], {"id": "doc-1", "text": C4_TEXTS[5]}])
    s = assert_accounted(run_it(manifest(tmp_path, ["data/*.jsonl.gz"], ids="derive")))
    assert s["quarantined"] == 0
    assert s["rejected_by"] == {"dedupe": {"exact_dedupe_v1:duplicate_exact": 1}}
    ids = tokenized_ids(tmp_path)
    # Line 5 reused doc-1's id for other text: renamed and kept. Line 4 repeated doc-0 verbatim: renamed,
    # then exact dedupe kept one of the two copies by its keep rule (content hash, then id).
    assert len(ids) == 4 and {"doc-1", "doc-2"} < set(ids)
    derived = sorted(i for i in ids if not i.startswith("doc-"))
    assert all(len(i) == 32 for i in derived), "a derived id is a stable digest of source, file and line"
    assert len(derived) == (2 if "doc-0" not in ids else 1)
    # Stable: the same data elsewhere gives the same derived ids.
    other = tmp_path / "again"
    shutil.copytree(tmp_path / "data", other / "data")
    run_it(manifest(other, ["data/*.jsonl.gz"], ids="derive"))
    assert tokenized_ids(other) == ids


def test_unusable_ids_are_quarantined_or_derived(tmp_path):
    bad = ["", "x#part1", "line\nbreak", "nul\x00"]
    write_jsonl(
        tmp_path / "data" / "a.jsonl.gz",
        [{"id": doc_id, "text": C4_TEXTS[i]} for i, doc_id in enumerate(bad)] + [{"id": "fine", "text": C4_TEXTS[5]}],
    )
    s = assert_accounted(run_it(manifest(tmp_path, ["data/*.jsonl.gz"])))
    assert s["quarantine_reasons"] == {"invalid_id": 4}
    excerpts = sorted(q["excerpt"] for q in quarantine_rows(tmp_path))
    assert any("reserved '#part'" in e for e in excerpts) and any("empty id" in e for e in excerpts)
    assert tokenized_ids(tmp_path) == ["fine"]

    other = tmp_path / "derive"
    shutil.copytree(tmp_path / "data", other / "data")
    s = assert_accounted(run_it(manifest(other, ["data/*.jsonl.gz"], ids="derive")))
    assert s["quarantined"] == 0 and len(tokenized_ids(other)) == 5


def test_a_repeated_id_stops_an_on_error_fail_run_naming_both_places(tmp_path):
    write_jsonl(tmp_path / "data" / "a.jsonl.gz", [{"id": "same", "text": C4_TEXTS[0]}, {"id": "same", "text": C4_TEXTS[1]}])
    with pytest.raises(InputError, match=r"a\.jsonl\.gz: line 2: duplicate id 'same' \(first at .*a\.jsonl\.gz line 1\)"):
        run_it(manifest(tmp_path, ["data/*.jsonl.gz"], on_error="fail"))
    assert not (release(tmp_path) / "stats.json").exists()


def test_the_shared_parquet_sample_with_repeated_ids_keeps_three_of_five_rows(tmp_path, shared):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(shared / "corpora" / "web" / "parquet" / "universal_fdedup__sample1.parquet", data)
    s = assert_accounted(run_it(manifest(tmp_path, ["data/*.parquet"], text_field="contents")))
    assert s["read"] == 5 and s["quarantine_reasons"] == {"duplicate_id": 2}
    assert sorted(q["line"] for q in quarantine_rows(tmp_path)) == [4, 5]
    assert len(set(tokenized_ids(tmp_path))) == 3
