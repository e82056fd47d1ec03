"""Eval sets read from local files in every supported format, declared inline or in versioned files."""

import bz2
import csv
import gzip
import json
import lzma
import os
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
import zstandard
from helpers_decontaminate import EVALS, REPO, require_shared

from curation.config import ConfigError, from_mapping
from curation.errors import InputError, ManifestError
from filters.decontaminate.config import DecontaminateConfig, EvalSetConfig, FieldStripConfig
from filters.decontaminate.evalsets import load_eval_suite, read_benchmark, resolve_benchmarks

ARC = EVALS / "arc" / "ai2_arc__ARC-Challenge__validation.jsonl"


@pytest.fixture
def arc_records() -> list[dict]:
    require_shared()
    return [json.loads(line) for line in ARC.read_text().splitlines()[:20]]


def _items(path: Path, **overrides):
    cfg = DecontaminateConfig(
        evals=[
            EvalSetConfig(
                name="arc", paths=[str(path)], text_fields=["question", "choices.text"], **overrides
            )
        ]
    )
    (benchmark,) = resolve_benchmarks(cfg, path.parent)
    return list(read_benchmark(benchmark))


def _write_jsonl(path: Path, records: list[dict], opener=open) -> Path:
    with opener(path, "wb") as f:
        f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
    return path


def _expected(records):
    return [(r["question"], *r["choices"]["text"]) for r in records]


@pytest.mark.parametrize(
    ("name", "opener"),
    [
        ("arc.jsonl", open),
        ("arc.jsonl.gz", gzip.open),
        ("arc.jsonl.bz2", bz2.open),
        ("arc.jsonl.xz", lzma.open),
        ("arc.jsonl.zst", lambda p, mode: zstandard.open(p, mode)),
    ],
)
def test_reads_jsonl_plain_and_compressed_with_nested_list_fields(tmp_path, arc_records, name, opener):
    items = _items(_write_jsonl(tmp_path / name, arc_records, opener), id_field="id")
    assert [i.segments for i in items] == _expected(arc_records)
    assert [i.item_id for i in items] == [r["id"] for r in arc_records]
    assert items[0].standalone == (True, False, False, False, False)[: len(items[0].segments)]


def test_reads_json_list_and_mapping_of_records(tmp_path, arc_records):
    (tmp_path / "list.json").write_text(json.dumps(arc_records))
    (tmp_path / "rows.json").write_text(json.dumps({"version": 1, "rows": arc_records}))
    assert [i.segments for i in _items(tmp_path / "list.json")] == _expected(arc_records)
    assert [i.segments for i in _items(tmp_path / "rows.json")] == _expected(arc_records)


def test_reads_parquet_and_both_arrow_ipc_formats(tmp_path, arc_records):
    table = pa.Table.from_pylist(arc_records)
    pq.write_table(table, tmp_path / "arc.parquet")
    # Hugging Face `datasets` writes Arrow IPC streams (data-00000-of-00001.arrow).
    with pa.OSFile(str(tmp_path / "stream.arrow"), "wb") as sink, pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    with pa.OSFile(str(tmp_path / "file.arrow"), "wb") as sink, pa.ipc.new_file(sink, table.schema) as w:
        w.write_table(table)
    for name in ("arc.parquet", "stream.arrow", "file.arrow"):
        items = _items(tmp_path / name, id_field="id")
        assert [i.segments for i in items] == _expected(arc_records), name
        assert items[3].item_id == arc_records[3]["id"]


def test_reads_csv_columns(tmp_path, arc_records):
    with open(tmp_path / "arc.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["id", "question", "answerKey"])
        writer.writeheader()
        writer.writerows({k: r[k] for k in ("id", "question", "answerKey")} for r in arc_records)
    cfg = DecontaminateConfig(evals=[EvalSetConfig(name="arc", paths=["arc.csv"], text_fields=["question"])])
    items = list(read_benchmark(resolve_benchmarks(cfg, tmp_path)[0]))
    assert [i.segments for i in items] == [(r["question"],) for r in arc_records]
    assert items[0].item_id == "arc.csv:0"


def test_missing_eval_file_error_names_benchmark_and_path(tmp_path):
    cfg = DecontaminateConfig(
        evals=[EvalSetConfig(name="gsm8k", paths=["nope/test.jsonl"], text_fields=["question"])]
    )
    with pytest.raises(InputError, match=r"benchmark 'gsm8k'.*nope/test\.jsonl"):
        list(read_benchmark(resolve_benchmarks(cfg, tmp_path)[0]))


def test_misspelled_text_field_error_suggests_the_real_one(tmp_path, arc_records):
    path = _write_jsonl(tmp_path / "arc.jsonl", arc_records)
    cfg = DecontaminateConfig(evals=[EvalSetConfig(name="arc", paths=[str(path)], text_fields=["questoin"])])
    with pytest.raises(InputError, match=r"'questoin'.*did you mean 'question'"):
        list(read_benchmark(resolve_benchmarks(cfg, tmp_path)[0]))


def test_suite_paths_resolve_against_the_suite_file(tmp_path, arc_records):
    (tmp_path / "data").mkdir()
    _write_jsonl(tmp_path / "data" / "arc.jsonl", arc_records)
    (tmp_path / "evals").mkdir()
    suite = {
        "name": "mini",
        "version": "1.0.0",
        "benchmarks": [{"name": "arc", "paths": ["../data/arc.jsonl"], "text_fields": ["question"]}],
    }
    (tmp_path / "evals" / "mini.yaml").write_text(yaml.safe_dump(suite))
    (tmp_path / "manifests").mkdir()
    cfg = DecontaminateConfig(eval_files=["../evals/mini.yaml"])
    (benchmark,) = resolve_benchmarks(cfg, tmp_path / "manifests")
    assert benchmark.paths == (str((tmp_path / "data" / "arc.jsonl").resolve()),)
    assert len(list(read_benchmark(benchmark))) == len(arc_records)


def test_benchmark_declared_twice_is_refused(tmp_path):
    suite = {
        "name": "mini",
        "version": "1.0.0",
        "benchmarks": [{"name": "arc", "paths": ["a.jsonl"], "text_fields": ["question"]}],
    }
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(suite))
    cfg = DecontaminateConfig(
        eval_files=["mini.yaml"], evals=[EvalSetConfig(name="arc", paths=["b.jsonl"], text_fields=["q"])]
    )
    with pytest.raises(ManifestError, match="'arc' is declared twice"):
        resolve_benchmarks(cfg, tmp_path)


def test_config_errors_name_the_field():
    with pytest.raises(ConfigError, match="action.*'remove_span'"):
        from_mapping(DecontaminateConfig, {"eval_files": ["x.yaml"], "action": "remove_spans"})
    with pytest.raises(ConfigError, match="nothing to decontaminate"):
        from_mapping(DecontaminateConfig, {"ngram": 13})
    with pytest.raises(ConfigError, match="min_item_words"):
        from_mapping(DecontaminateConfig, {"eval_files": ["x.yaml"], "ngram": 5, "min_item_words": 8})


@pytest.mark.parametrize(
    ("strip", "message"),
    [
        ({"pattern": "Question: ("}, r"benchmarks\[0\]\.strip\[0\].*not a regular expression"),
        ({"pattern": "(Answer:)?"}, r"benchmarks\[0\]\.strip\[0\].*matches the empty string"),
        ({"fields": ["question"]}, r"benchmarks\[0\]\.strip\[0\].*needs a non-empty"),
        ({"prefix": "Q:", "fields": ["questoin"]}, r"benchmarks\[0\]: .*'questoin'.*did you mean 'question'"),
    ],
)
def test_strip_rule_errors_name_the_field(tmp_path, strip, message):
    suite = {
        "name": "mini",
        "version": "1.0.0",
        "benchmarks": [{"name": "arc", "paths": ["a.jsonl"], "text_fields": ["question"], "strip": [strip]}],
    }
    (tmp_path / "mini.yaml").write_text(yaml.safe_dump(suite))
    with pytest.raises(ManifestError, match=message):
        load_eval_suite(tmp_path / "mini.yaml")


def test_templates_are_stripped_from_the_fields_they_are_declared_for(tmp_path, arc_records):
    records = [
        {
            **r,
            "question": f"Question: {r['question']}\nAnswer:",
            "choices": {"text": [f"(A) {r['choices']['text'][0]}"]},
        }
        for r in arc_records[:3]
    ]
    path = _write_jsonl(tmp_path / "arc.jsonl", records)
    items = _items(
        path, strip=[FieldStripConfig(prefix="(A)", fields=["choices.text"])], strip_templates=False
    )
    assert [i.segments[0] for i in items] == [r["question"] for r in records]
    assert [i.segments[1].strip() for i in items] == [r["choices"]["text"][0] for r in arc_records[:3]]
    defaults = _items(path)
    assert [i.segments[0].strip() for i in defaults] == [r["question"] for r in arc_records[:3]]


@pytest.mark.parametrize("suite", sorted((REPO / "manifests" / "evals").glob("*.yaml")), ids=lambda p: p.name)
def test_every_versioned_eval_suite_loads_and_its_files_exist(suite):
    require_shared()
    loaded = load_eval_suite(suite)
    assert loaded.benchmarks
    cfg = DecontaminateConfig(eval_files=[str(suite)])
    for benchmark in resolve_benchmarks(cfg, REPO):
        assert all(os.path.isfile(p) for p in benchmark.paths), benchmark


def test_copied_suite_with_missing_benchmark_file_fails_clearly(tmp_path):
    require_shared()
    shutil.copy(REPO / "manifests" / "evals" / "olmo-core-2024.yaml", tmp_path / "suite.yaml")
    cfg = DecontaminateConfig(eval_files=["suite.yaml"])
    benchmark = resolve_benchmarks(cfg, tmp_path)[0]
    with pytest.raises(InputError, match=f"benchmark '{benchmark.config.name}': eval file not found"):
        list(read_benchmark(benchmark))
