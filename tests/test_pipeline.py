"""End-to-end runs of the pipeline on real shipped data: accounting, determinism, resume, releases."""

from __future__ import annotations

import gzip
import hashlib
import importlib.metadata
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import yaml
from conftest import DEMO_DATA, REPO, link_unopenable_file, small_manifest, write_manifest

from curation.cli import main
from curation.errors import InputError, ReleaseConflictError
from curation.pipeline import prepare, run
from mixes.manifest import load_manifest


def output_digests(root: Path) -> dict[str, str]:
    """sha256 of every product of a run (its logs excluded)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith("logs/"):
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def run_manifest(path: Path, *beam_args: str) -> dict:
    return run(load_manifest(path), list(beam_args), log=lambda _: None)


@pytest.fixture(scope="module")
def small_release(tmp_path_factory) -> tuple[Path, dict]:
    """The small manifest run once by one in-process worker: its folder and stats, read by several tests."""
    folder = tmp_path_factory.mktemp("small")
    stats = run_manifest(write_manifest(folder, small_manifest(folder)), "--direct_num_workers=1")
    return folder, stats


def test_small_mix_accounts_for_every_document_and_writes_shards(small_release):
    folder, stats = small_release
    root = folder / "out" / "small" / "1.0.0"
    web, papers = stats["sources"]["web"], stats["sources"]["papers"]
    assert (web["read"], papers["read"]) == (20, 1000)
    for s in (web, papers):
        assert s["read"] == s["kept_documents"] + s["rejected"] + s["quarantined"]
    shards = sorted((root / "shards").glob("part-*.npy"))
    assert shards and stats["totals"]["mixed_tokens"] == sum(p.stat().st_size // 4 for p in shards)
    tokens = np.memmap(shards[0], dtype="<u4", mode="r")
    assert int(tokens.max()) < 100_278 and (tokens == 100257).sum() > 0
    for name in ("stats.json", "lock.json", "release.json", "manifest.yaml", "ledger/rejections.parquet", "ledger/quarantine.parquet"):
        assert (root / name).exists(), name
    documents = sorted((root / "documents" / "papers").glob("part-*.jsonl.zst"))
    assert documents


def test_bad_inputs_are_quarantined_and_counted(tmp_path):
    body = small_manifest(tmp_path)
    web = tmp_path / "data" / "web"
    good = gzip.decompress((web / "c4-sample.01.json.gz").read_bytes()).split(b"\n")
    lines = [good[0], b"{not json", b'{"id": "x1", "text": "caf\xe9 latin-1 bytes"}', b'{"id": "x2"}', good[1]]
    (web / "mixed-bad.json.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    (web / "empty.json.gz").write_bytes(gzip.compress(b""))
    (web / "blank.json.gz").write_bytes(gzip.compress(b"\n \r\n" * 1000))
    whole = (web / "c4-sample.02.json.gz").read_bytes()
    (web / "truncated.json.gz").write_bytes(whole[: len(whole) // 2])
    # A crawl whose one 404 page is skipped by design: counted, but not read as a document.
    crawl = gzip.decompress((DEMO_DATA / "warc" / "sample-0000.warc.gz").read_bytes())
    (tmp_path / "data" / "crawl.warc").write_bytes(crawl.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 404 OK", 1))
    body["sources"].append({"name": "crawl", "paths": ["data/crawl.warc"]})
    stats = run_manifest(write_manifest(tmp_path, body), "--direct_num_workers=1")
    for s in stats["sources"].values():
        assert s["read"] == s["kept_documents"] + s["rejected"] + s["quarantined"]
    s, crawl_stats = stats["sources"]["web"], stats["sources"]["crawl"]
    assert (s["files"], s["empty_files"], stats["totals"]["empty_files"]) == (6, 2, 2)
    assert (crawl_stats["read"], crawl_stats["skipped_reasons"]) == (21, {"http_status_not_200": 1})
    reasons = s["quarantine_reasons"]
    assert reasons.get("invalid_json") == 1 and reasons.get("invalid_utf8") == 1
    assert sum(v for k, v in reasons.items() if "text" in k) >= 1
    assert any("gzip" in k or "corrupt" in k or "truncat" in k for k in reasons), reasons
    quarantine = pq.read_table(tmp_path / "out" / "small" / "1.0.0" / "ledger" / "quarantine.parquet").to_pylist()
    assert {q["uri"].rsplit("/", 1)[-1] for q in quarantine} >= {"mixed-bad.json.gz", "truncated.json.gz"}
    assert all(q["line"] is not None or q["offset"] is not None for q in quarantine)
    # The crawl's text is what its extractor made of it, so the lock names the extractor and its library.
    lock = orjson.loads((tmp_path / "out" / "small" / "1.0.0" / "lock.json").read_bytes())
    assert lock["extractors"] == [
        {
            "source": "crawl",
            "extractor": "resiliparse_article",
            "function": "curation.readers.extract:resiliparse_article",
            "libraries": {"resiliparse": importlib.metadata.version("resiliparse")},
        }
    ]


def test_an_input_that_cannot_be_opened_is_quarantined_and_its_source_goes_on(tmp_path):
    body = small_manifest(tmp_path)
    # As root the unopenable file is a link out of the input folder, which a source follows only when asked.
    body["sources"][0]["follow_symlinks"] = True
    link_unopenable_file(tmp_path / "data" / "web" / "locked.json.gz")
    stats = run_manifest(write_manifest(tmp_path, body), "--direct_num_workers=1")
    web = stats["sources"]["web"]
    assert (web["files"], web["read"], web["quarantine_reasons"]) == (3, 21, {"unreadable_file": 1})
    lock = orjson.loads((tmp_path / "out" / "small" / "1.0.0" / "lock.json").read_bytes())
    (locked,) = [e for e in lock["inputs"] if e["uri"].endswith("locked.json.gz")]
    assert locked["sha256"] is None and "Permission denied" in locked["unreadable"]


def test_on_error_fail_stops_with_the_file_and_line(tmp_path, capsys):
    body = small_manifest(tmp_path)
    body["sources"][0]["on_error"] = "fail"
    (tmp_path / "data" / "web" / "bad.json.gz").write_bytes(gzip.compress(b'{"id": "a", "text": "fine"}\n{broken\n'))
    with pytest.raises(InputError, match=r"bad\.json\.gz: line 2: invalid_json"):
        run_manifest(write_manifest(tmp_path, body), "--direct_num_workers=1")
    assert not (tmp_path / "out" / "small" / "1.0.0" / "stats.json").exists()


def test_missing_input_path_is_a_clear_error(tmp_path, capsys):
    body = small_manifest(tmp_path)
    body["sources"][1]["paths"] = ["data/nowhere/*.jsonl.gz"]
    assert main(["run", str(write_manifest(tmp_path, body))]) == 2
    assert "data/nowhere/*.jsonl.gz" in capsys.readouterr().err


def test_same_manifest_gives_identical_bytes_with_one_or_two_workers(tmp_path, small_release):
    # The one-worker release lies in another folder: a release's bytes never name where it was written.
    run_manifest(write_manifest(tmp_path, small_manifest(tmp_path)), "--direct_num_workers=2")
    two = output_digests(tmp_path / "out" / "small" / "1.0.0")
    one = output_digests(small_release[0] / "out" / "small" / "1.0.0")
    assert one == two
    assert any(k.startswith("shards/") for k in one)
    # Each phase's log says what the phase did, and not the workers' start-up chatter.
    logs = {log.stem: log.read_text() for log in (tmp_path / "out" / "small" / "1.0.0" / "logs").glob("*.log")}
    assert "curate: curate/documents_read 1,020" in logs["curate"] and "2 local worker(s)" in logs["curate"]
    assert "tokenize: tokenize/tokens " in logs["tokenize"]
    chatter = ("Logging handler created", "Discarding unparseable args", "semi_persistent_directory")
    assert not [(phase, c) for phase, text in logs.items() for c in chatter if c in text], logs


def test_a_released_version_cannot_be_overwritten_by_another_manifest(small_release):
    folder, _ = small_release
    root = folder / "out" / "small" / "1.0.0"
    before = output_digests(root)
    logs: list[str] = []
    run(load_manifest(folder / "manifest.yaml"), ["--direct_num_workers=1"], log=logs.append)
    assert any("already released" in line for line in logs)
    body = dict(yaml.safe_load((folder / "manifest.yaml").read_text()), seed=8)
    with pytest.raises(ReleaseConflictError, match="new version"):
        run_manifest(write_manifest(folder, body, "reseeded.yaml"), "--direct_num_workers=1")
    assert output_digests(root) == before


def test_killed_run_resumes_and_ends_with_the_same_bytes(tmp_path):
    body = small_manifest(tmp_path)
    # Many small input files, so the kill lands between pools.
    papers = tmp_path / "data" / "papers"
    rows = gzip.decompress((papers / "arxiv-abstracts-head1000.jsonl.gz").read_bytes()).splitlines()
    (papers / "arxiv-abstracts-head1000.jsonl.gz").unlink()
    for i in range(0, 1000, 4):
        (papers / f"part-{i:04d}.jsonl.gz").write_bytes(gzip.compress(b"\n".join(rows[i : i + 4]) + b"\n", mtime=0))
    manifest = write_manifest(tmp_path, body)
    root = tmp_path / "out" / "small" / "1.0.0"
    run_manifest(manifest, "--direct_num_workers=1")
    uninterrupted = output_digests(root)
    import shutil

    shutil.rmtree(tmp_path / "out")
    command = [sys.executable, "-m", "curation.cli", "run", str(manifest), "--direct_num_workers=1", "--quiet"]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    pool_dir = tmp_path / "out" / "_cache" / "pool" / "papers"
    # The deadline only guards against a hang: a busy machine may take minutes to start Beam and pool 3 files.
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline and len(list(pool_dir.glob("*.meta.json"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    pooled_before = len(list(pool_dir.glob("*.meta.json")))
    assert 3 <= pooled_before < 250, "the kill should land while input files are being pooled"
    assert not (root / "stats.json").exists()
    logs = []
    run(load_manifest(manifest), ["--direct_num_workers=1"], log=logs.append)
    already = [int(line.split(", ")[1].split()[0]) for line in logs if "already pooled" in line]
    assert already and already[0] >= pooled_before
    resumed = output_digests(root)
    assert resumed == uninterrupted


def test_every_manifest_in_the_repo_loads():
    manifests = sorted((REPO / "manifests").rglob("*.yaml"))
    assert manifests
    for path in manifests:
        if "evals" in path.parts:
            continue
        loaded = load_manifest(path)
        assert loaded.manifest.sources


def test_demo_manifest_runs_end_to_end(tmp_path):
    loaded = load_manifest(REPO / "manifests" / "demo" / "demo.yaml")
    ctx = prepare(loaded, [])
    assert {name for name, _ in ctx.inputs} == {s.name for s in loaded.manifest.sources}


def test_contaminated_span_is_cut_recorded_and_reported(tmp_path):
    body = small_manifest(tmp_path)
    evals = REPO / "data" / "demo" / "evals" / "gsm8k-test.jsonl"
    item = orjson.loads(evals.read_text().splitlines()[7])
    papers = tmp_path / "data" / "papers" / "arxiv-abstracts-head1000.jsonl.gz"
    rows = [orjson.loads(line) for line in gzip.decompress(papers.read_bytes()).splitlines()]
    host = rows[3]
    middle = len(host["text"]) // 2
    host["text"] = host["text"][:middle] + "\n\n" + item["question"] + "\n" + item["answer"] + "\n\n" + host["text"][middle:]
    papers.write_bytes(gzip.compress(b"\n".join(orjson.dumps(r) for r in rows) + b"\n", mtime=0))
    body["decontaminate"] = {
        "evals": [{"name": "gsm8k", "paths": [str(evals)], "text_fields": ["question", "answer"]}],
        "action": "remove_span",
        "min_piece_chars": 50,
    }
    stats = run_manifest(write_manifest(tmp_path, body), "--direct_num_workers=1")
    root = tmp_path / "out" / "small" / "1.0.0"
    ledger = pq.read_table(root / "ledger" / "rejections.parquet").to_pylist()
    cut = [r for r in ledger if r["stage"] == "decontaminate" and r["doc_id"] == host["id"]]
    assert cut and cut[0]["reason"] == "contaminated_span" and orjson.loads(cut[0]["detail"])["benchmark"] == "gsm8k"
    assert stats["sources"]["papers"]["rejected"] == 0  # the rest of the document is kept
    report = orjson.loads((root / "decontamination" / "decontamination.json").read_bytes())
    assert report["benchmarks"]["gsm8k"]["documents_affected"] == 1
    published = b"".join(
        __import__("zstandard").ZstdDecompressor().stream_reader(open(p, "rb")).read()
        for p in sorted((root / "documents" / "papers").glob("*.zst"))
    )
    texts = [orjson.loads(line)["text"] for line in published.splitlines()]
    assert not any(item["question"][:80] in t for t in texts)
    assert any(t in host["text"] for t in texts if len(t) > 50)


def test_an_unfinished_version_can_be_taken_over_by_a_corrected_manifest(tmp_path):
    body = small_manifest(tmp_path, mix={"target_tokens": 10_000_000, "sources": {"web": {"ratio": 0.5}, "papers": {"ratio": 0.5}}})
    with pytest.raises(Exception, match="short by"):
        run_manifest(write_manifest(tmp_path, body), "--direct_num_workers=1")
    body["mix"]["target_tokens"] = 12_000
    logs = []
    stats = run(load_manifest(write_manifest(tmp_path, body)), ["--direct_num_workers=1"], log=logs.append)
    assert any("taking it over" in line for line in logs)
    assert any("already pooled" in line and not line.endswith(" 0 already pooled") for line in logs)
    assert abs(stats["totals"]["mixed_tokens"] - 12_000) < 600


def test_a_copy_of_manifest_and_data_elsewhere_selects_the_same_documents_and_tokens(tmp_path):
    # c4 records carry no id: theirs are derived from the file, named relative to the manifest's folder.
    body = small_manifest(tmp_path / "a", mix={"target_tokens": 12_000, "sources": {"web": {"ratio": 0.5}, "papers": {"ratio": 0.5}}})
    run_manifest(write_manifest(tmp_path / "a", body), "--direct_num_workers=1")
    shutil.copytree(tmp_path / "a" / "data", tmp_path / "b" / "data")
    run_manifest(write_manifest(tmp_path / "b", body), "--direct_num_workers=1")
    shards = lambda folder: {  # noqa: E731
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (folder / "out" / "small" / "1.0.0" / "shards").glob("*.npy")
    }
    assert shards(tmp_path / "a") == shards(tmp_path / "b") and shards(tmp_path / "a")
    ids = lambda folder: pq.read_table(folder / "out" / "small" / "1.0.0" / "shards" / "part-00000.index").column("doc_id").to_pylist()  # noqa: E731
    assert ids(tmp_path / "a") == ids(tmp_path / "b")


def test_ids_stay_the_same_elsewhere_when_the_data_lies_beside_the_manifests_folder(tmp_path):
    # As the demo: manifests/<name>/<name>.yaml reads ../../data/..., outside the manifest's own folder.
    body = small_manifest(tmp_path / "a", mix={"target_tokens": 12_000, "sources": {"web": {"ratio": 0.5}, "papers": {"ratio": 0.5}}})
    for source in body["sources"]:
        source["paths"] = ["../../" + p for p in source["paths"]]
    body["output"]["path"] = "../../out"
    for checkout in ("a", "b"):
        if checkout == "b":
            shutil.copytree(tmp_path / "a" / "data", tmp_path / "b" / "data")
        (tmp_path / checkout / "manifests" / "small").mkdir(parents=True)
        run_manifest(write_manifest(tmp_path / checkout / "manifests" / "small", body), "--direct_num_workers=1")
    ids = lambda folder: pq.read_table(folder / "out" / "small" / "1.0.0" / "shards" / "part-00000.index").column("doc_id").to_pylist()  # noqa: E731
    assert ids(tmp_path / "a") and ids(tmp_path / "a") == ids(tmp_path / "b")
