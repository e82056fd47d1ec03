"""Tokenizer, fastText models, eval sets and the decontamination index read from and written to S3 (moto in
server mode) give what the same files give locally, and leave nothing under the working directory."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, TOKENIZER, small_manifest, write_manifest

from curation import storage
from curation.cli import main
from curation.layout import RunLayout
from curation.lock import file_entry
from curation.pipeline import RunContext
from curation.stages.decontaminate import index_path
from curation.stages.tokenize import DocumentTokenizer, tokenizer_sha256
from filters.base import TextView
from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig
from filters.decontaminate.detect import detect
from filters.decontaminate.evalsets import read_benchmark, resolve_benchmarks
from filters.decontaminate.index import DecontaminationIndex, build_index, index_digest
from filters.fasttext_hs import is_fasttext_model
from filters.language import DEFAULT_LID_MODEL, LanguageConfig, LanguageFilter
from filters.quality_classifier import QualityClassifierConfig, QualityClassifierFilter
from mixes.manifest import OutputConfig, load_manifest

DEMO = REPO / "data" / "demo"
QUALITY_MODEL = REPO / "models" / "quality-dclm-labels.ftz"
GSM8K = DEMO / "evals" / "gsm8k-test.jsonl"
HUMANEVAL = DEMO / "evals" / "HumanEval.jsonl.gz"
PARQUET = REPO / "data" / "io" / "universal_fdedup__sample1.parquet"


@pytest.fixture(autouse=True)
def scratch(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "scratch"
    monkeypatch.setenv("CURATION_SCRATCH", str(folder))
    return folder


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch) -> Path:
    """An empty working directory, which the test checks stays empty."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def _upload(uri: str, data: bytes) -> str:
    with storage.atomic_write(uri) as f:
        f.write(data)
    return uri


def _web_texts(limit: int) -> list[str]:
    with gzip.open(DEMO / "web" / "c4-sample.01.json.gz", "rt", encoding="utf-8") as lines:
        return [json.loads(line)["text"] for _, line in zip(range(limit), lines)]


def _cached_copies(scratch: Path) -> list[Path]:
    return sorted(p for p in (scratch / "objects").iterdir() if not p.name.endswith(".lock"))


def test_local_file_fetches_an_object_once_and_again_when_it_changes(s3_bucket, scratch, empty_cwd):
    uri = _upload(f"{s3_bucket}/models/lid.176.ftz", DEFAULT_LID_MODEL.read_bytes())
    path = storage.local_file(uri)
    assert Path(path).parent == scratch / "objects"
    assert Path(path).read_bytes() == DEFAULT_LID_MODEL.read_bytes()
    first = os.stat(path)
    assert storage.local_file(uri) == path
    assert (os.stat(path).st_ino, os.stat(path).st_mtime_ns) == (first.st_ino, first.st_mtime_ns)
    assert storage.local_file(str(DEFAULT_LID_MODEL)) == str(DEFAULT_LID_MODEL)

    _upload(uri, QUALITY_MODEL.read_bytes())
    changed = storage.local_file(uri)
    assert changed != path and Path(changed).read_bytes() == QUALITY_MODEL.read_bytes()
    assert _cached_copies(scratch) == sorted([Path(path), Path(changed)])
    assert list(empty_cwd.iterdir()) == []


def test_processes_fetching_at_once_share_one_complete_copy(s3_bucket, s3_endpoint, scratch):
    uri = _upload(f"{s3_bucket}/tokenizer.json", TOKENIZER.read_bytes())
    fetch = "import sys; from curation import storage; print(storage.local_file(sys.argv[1]))"
    env = {**os.environ, "CURATION_S3_ENDPOINT_URL": s3_endpoint, "PYTHONPATH": str(REPO)}
    workers = [
        subprocess.Popen([sys.executable, "-c", fetch, uri], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(4)
    ]
    paths = {w.communicate(timeout=120)[0].strip() for w in workers}
    assert all(w.returncode == 0 for w in workers)
    (path,) = paths
    assert _cached_copies(scratch) == [Path(path)]
    assert Path(path).read_bytes() == TOKENIZER.read_bytes()


def test_s3_tokenizer_tokenizes_like_the_local_one_and_records_the_same_sha256(s3_bucket, empty_cwd):
    uri = _upload(f"{s3_bucket}/tokenizers/allenai_dolma2.json", TOKENIZER.read_bytes())
    output = OutputConfig(path="unused", tokenizer=uri)
    remote, local = DocumentTokenizer(uri, output), DocumentTokenizer(str(TOKENIZER), output)
    texts = _web_texts(20)
    (from_s3, s3_lengths), (from_disk, disk_lengths) = remote.encode_documents(texts), local.encode_documents(texts)
    assert from_s3.tolist() == from_disk.tolist() and s3_lengths.tolist() == disk_lengths.tolist()
    assert len(s3_lengths) == len(texts) and min(s3_lengths) > 10
    expected = hashlib.sha256(TOKENIZER.read_bytes()).hexdigest()
    assert (
        remote.sha256 == local.sha256 == tokenizer_sha256(uri) == tokenizer_sha256(str(TOKENIZER)) == expected
    )
    assert list(empty_cwd.iterdir()) == []


def test_s3_fasttext_models_score_like_the_local_ones(s3_bucket):
    lid_uri = _upload(f"{s3_bucket}/lid.176.ftz", DEFAULT_LID_MODEL.read_bytes())
    quality_uri = _upload(f"{s3_bucket}/quality.ftz", QUALITY_MODEL.read_bytes())
    views = [TextView(t) for t in _web_texts(30)]
    languages_s3 = LanguageFilter(
        LanguageConfig(languages=["en", "de"], model_path=lid_uri, score_paragraphs=True)
    )
    languages_local = LanguageFilter(LanguageConfig(languages=["en", "de"], score_paragraphs=True))
    assert languages_s3.score_batch(views) == languages_local.score_batch(views)
    quality_s3 = QualityClassifierFilter(QualityClassifierConfig(model=quality_uri, min_score=0.5))
    quality_local = QualityClassifierFilter(QualityClassifierConfig(model=str(QUALITY_MODEL), min_score=0.5))
    assert quality_s3.score_batch(views) == quality_local.score_batch(views)
    assert file_entry(quality_uri)["sha256"] == file_entry(str(QUALITY_MODEL))["sha256"]
    assert is_fasttext_model(lid_uri) and not is_fasttext_model(
        _upload(f"{s3_bucket}/notes.bin", b"__label__x")
    )


def _eval_config(gsm8k: str, humaneval: str, parquet: str) -> DecontaminateConfig:
    return DecontaminateConfig(
        evals=[
            EvalSetConfig(name="gsm8k", paths=[gsm8k], text_fields=["question", "answer"]),
            EvalSetConfig(name="humaneval", paths=[humaneval], text_fields=["prompt"], id_field="task_id"),
            EvalSetConfig(name="docs", paths=[parquet], text_fields=["contents"], id_field="document_id"),
        ]
    )


def _upload_evals(bucket: str) -> DecontaminateConfig:
    return _eval_config(
        *(_upload(f"{bucket}/evals/{p.name}", p.read_bytes()) for p in (GSM8K, HUMANEVAL, PARQUET))
    )


def test_s3_eval_sets_give_the_local_items_and_index_digest(s3_bucket, tmp_path):
    remote, local = _upload_evals(s3_bucket), _eval_config(str(GSM8K), str(HUMANEVAL), str(PARQUET))
    remote_items = [item for b in resolve_benchmarks(remote, tmp_path) for item in read_benchmark(b)]
    local_items = [item for b in resolve_benchmarks(local, tmp_path) for item in read_benchmark(b)]
    assert remote_items == local_items
    assert {i.benchmark for i in remote_items} == {"gsm8k", "humaneval", "docs"}
    assert index_digest(remote, tmp_path) == index_digest(local, tmp_path)


def test_eval_suite_file_on_s3_resolves_its_relative_paths_under_its_prefix(s3_bucket, tmp_path):
    gsm8k = _upload(f"{s3_bucket}/evals/data/gsm8k.jsonl", GSM8K.read_bytes())
    humaneval = _upload(f"{s3_bucket}/shared/HumanEval.jsonl.gz", HUMANEVAL.read_bytes())
    suite = {
        "name": "mini",
        "version": "1.0.0",
        "benchmarks": [
            {"name": "gsm8k", "paths": ["data/gsm8k.jsonl"], "text_fields": ["question", "answer"]},
            {"name": "humaneval", "paths": ["../shared/HumanEval.jsonl.gz"], "text_fields": ["prompt"]},
        ],
    }
    suite_uri = _upload(f"{s3_bucket}/evals/mini.yaml", json.dumps(suite).encode())
    resolved = resolve_benchmarks(DecontaminateConfig(eval_files=[suite_uri]), tmp_path)
    assert [b.paths for b in resolved] == [(gsm8k,), (humaneval,)]
    assert sum(1 for _ in read_benchmark(resolved[0])) == len(GSM8K.read_text().splitlines())


def test_decontamination_index_of_an_s3_output_is_kept_under_its_cache_prefix(
    s3_bucket, tmp_path, scratch, empty_cwd
):
    config = _upload_evals(s3_bucket)
    manifest_folder = tmp_path / "manifest"
    manifest_folder.mkdir()
    body = small_manifest(manifest_folder)
    body["output"]["path"] = f"{s3_bucket}/out"
    loaded = load_manifest(write_manifest(manifest_folder, body))
    loaded = dataclasses.replace(loaded, manifest=dataclasses.replace(loaded.manifest, decontaminate=config))
    layout = RunLayout.for_manifest(body["output"]["path"], loaded.manifest.name, loaded.manifest.version)
    ctx = RunContext(loaded, layout, sources={}, inputs=[], tokenizer_path=str(TOKENIZER))

    path = index_path(ctx)
    assert path.startswith(f"{s3_bucket}/out/_cache/decon-index/decon-index-") and storage.exists(path)
    assert storage.list_files(f"{s3_bucket}/out/**") == [path]
    assert index_path(ctx) == path  # named by its content: found, not built again
    loaded_index = DecontaminationIndex.load(path)
    fetched = _cached_copies(scratch)
    assert DecontaminationIndex.load(path).items_indexed == loaded_index.items_indexed
    assert _cached_copies(scratch) == fetched and len(fetched) > 0

    local_path, _ = build_index(
        _eval_config(str(GSM8K), str(HUMANEVAL), str(PARQUET)), tmp_path, str(tmp_path / "index")
    )
    local_index = DecontaminationIndex.load(local_path)
    assert loaded_index.items_indexed == local_index.items_indexed and loaded_index.items_indexed["gsm8k"] > 0
    item = json.loads(GSM8K.read_text().splitlines()[3])
    page = _web_texts(1)[0] + "\n" + item["question"] + " " + item["answer"] + "\n" + _web_texts(2)[1]
    assert detect(loaded_index, page) == detect(local_index, page) != []
    assert list(empty_cwd.iterdir()) == []


def _validate_error(capsys, manifest: Path) -> str:
    assert main(["validate", str(manifest)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    return err


def test_validate_checks_s3_files_as_it_checks_local_ones(s3_bucket, tmp_path, capsys):
    body = small_manifest(tmp_path)
    body["output"]["tokenizer"] = _upload(f"{s3_bucket}/tokenizer.json", TOKENIZER.read_bytes())
    body["sources"][0]["filters"] = [
        {"use": "language_v1", "model_path": _upload(f"{s3_bucket}/lid.ftz", DEFAULT_LID_MODEL.read_bytes())}
    ]
    evals = _upload(f"{s3_bucket}/evals/gsm8k.jsonl", GSM8K.read_bytes())
    body["decontaminate"] = {"evals": [{"name": "gsm8k", "paths": [evals], "text_fields": ["question"]}]}
    assert main(["validate", str(write_manifest(tmp_path, body))]) == 0
    capsys.readouterr()

    def tokenizer(body, uri):
        body["output"]["tokenizer"] = uri

    def model(body, uri):
        body["sources"][0]["filters"][0]["model_path"] = uri

    def eval_file(body, uri):
        body["decontaminate"]["evals"][0]["paths"] = [uri]

    bad_json_line = b'{"question": "q"}\n{"question": oops\n'
    cases = [
        ("output.tokenizer", tokenizer, "bad-tokenizer.json", b"<html>not found</html>", "is not JSON"),
        ("output.tokenizer", tokenizer, "absent.json", None, "not found"),
        (
            "sources[0].filters[0].model_path",
            model,
            "notes.bin",
            b"__label__hq a page\n",
            "not a fastText model",
        ),
        (
            "decontaminate: benchmark 'gsm8k'",
            eval_file,
            "bad.jsonl",
            bad_json_line,
            "bad.jsonl:2: not valid JSON",
        ),
        ("decontaminate: benchmark 'gsm8k'", eval_file, "absent.jsonl", None, "eval file not found"),
    ]
    for field, point_at, name, data, problem in cases:
        uri = f"{s3_bucket}/{name}"
        if data is not None:
            _upload(uri, data)
        changed = json.loads(json.dumps(body))
        point_at(changed, uri)
        manifest = write_manifest(tmp_path, changed)
        err = _validate_error(capsys, manifest)
        assert f"{manifest}: {field}" in err and uri in err and problem in err, err


def test_validate_refuses_a_uri_scheme_storage_cannot_read(tmp_path, capsys):
    body = small_manifest(tmp_path)
    body["output"]["tokenizer"] = "gs://bucket/tokenizer.json"
    manifest = write_manifest(tmp_path, body)
    err = _validate_error(capsys, manifest)
    assert (
        f"{manifest}: output.tokenizer: 'gs://bucket/tokenizer.json': only local paths and s3:// URIs" in err
    ), err
