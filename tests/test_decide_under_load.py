"""Decide must give the same bytes whatever the worker count and the machine's load. With 2 worker processes
on a busy machine, Beam's runner used to drop parts of bundle inputs (curation/data_plane_guard.py), and the
run shipped the unjudged documents as kept; this runs decide over a real multi-file corpus while burner
processes keep every core busy, and compares every decision file with a one-worker reference."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
import zstandard
from apache_beam.runners.portability.fn_api_runner import worker_handlers
from apache_beam.runners.worker import data_plane
from conftest import TOKENIZER, write_manifest

from curation.engine import usable_cores
from curation.pipeline import curate, decide, prepare
from curation.stages.decisions import read_decisions
from mixes.manifest import load_manifest

REVIEW_FILES, REVIEWS_PER_FILE = 4, 1000
SEND_QUEUE_BYTES = 1 << 20
FLUSH_INTERVAL_MS = 5
# Each burner stops by itself after this long, and is killed when the test ends.
BURNER_SECONDS = 1800


@contextmanager
def busy_cpus(processes: int):
    code = f"import time\nend = time.monotonic() + {BURNER_SECONDS}\nwhile time.monotonic() < end:\n    pass\n"
    burners = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(processes)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def build_corpus(shared: Path, folder: Path) -> Path:
    """Reviews split over several .jsonl.zst files (with their real exact duplicates), news, code (with its
    exact duplicates) and the decontamination fixtures, each a source; GSM8K, HumanEval and the fixtures'
    reference questions as eval sets."""
    data = folder / "data"
    reviews = zstandard.ZstdDecompressor().stream_reader((shared / "corpora/reviews/imdb-aclImdb-50k-labeled.jsonl.zst").open("rb")).read().splitlines()
    (data / "reviews").mkdir(parents=True)
    for i in range(REVIEW_FILES):
        chunk = reviews[i * REVIEWS_PER_FILE : (i + 1) * REVIEWS_PER_FILE]
        (data / "reviews" / f"part-{i}.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n".join(chunk) + b"\n"))
    for name, path in [("news", "corpora/news/bbc-fulltext-2225.jsonl.gz"), ("code", "corpora/code/github-permissive-sample.jsonl.gz")]:
        (data / name).mkdir()
        shutil.copy(shared / path, data / name)
    (data / "fixtures").mkdir()
    for path in sorted((shared / "evals/decon-fixtures").glob("training_*.jsonl")):
        records = [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]
        rows = [{"id": f"{path.stem}-{k}", "text": r["text"]} for k, r in enumerate(records)]
        (data / "fixtures" / f"{path.stem}.jsonl.gz").write_bytes(gzip.compress(b"".join(orjson.dumps(r) + b"\n" for r in rows)))
    body = {
        "name": "load",
        "version": "1.0.0",
        "seed": 11,
        "sources": [
            {"name": "reviews", "paths": ["data/reviews/*.jsonl.zst"], "filters": [{"use": "gopher_quality_v1"}]},
            {"name": "news", "paths": ["data/news/*.jsonl.gz"]},
            {"name": "code", "paths": ["data/code/*.jsonl.gz"]},
            {"name": "fixtures", "paths": ["data/fixtures/*.jsonl.gz"]},
        ],
        "dedupe": {"exact": {"scope": "global"}, "minhash": {"scope": "per_source"}, "paragraph": {"scope": "per_source"}},
        "decontaminate": {
            "evals": [
                {"name": "gsm8k", "paths": [str(shared / "evals/gsm8k/test.jsonl")], "text_fields": ["question", "answer"]},
                {"name": "humaneval", "paths": [str(shared / "evals/humaneval/HumanEval.jsonl.gz")], "text_fields": ["prompt", "canonical_solution"], "id_field": "task_id"},
                {"name": "fixtures", "paths": [str(shared / "evals/decon-fixtures/reference_question_answer_reference.jsonl")], "text_fields": ["question", "answer"], "id_field": "doc_id"},
            ],
            "action": "remove_span",
        },
        "output": {"path": "out", "tokenizer": str(TOKENIZER)},
    }
    return write_manifest(folder, body)


def decide_afresh(ctx, pools, workers: int) -> tuple[str, dict[str, str]]:
    """Decide from scratch with `workers` worker processes: its folder, and the sha256 of every file in it."""
    options = [f"--direct_num_workers={workers}", "--direct_running_mode=" + ("in_memory" if workers == 1 else "multi_processing")]
    ctx = dataclasses.replace(ctx, beam_args=options)
    shutil.rmtree(ctx.layout.cached("decisions"), ignore_errors=True)
    _, folder = decide(ctx, pools)
    files = sorted(p for p in Path(folder).rglob("*") if p.is_file())
    return folder, {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.slow
def test_decide_gives_identical_decisions_with_1_2_and_3_workers_while_the_cpus_are_busy(tmp_path, shared, monkeypatch):
    # Beam's flush lost input when it fired while the runner was still writing a bundle's input and then waited
    # on a full send queue: on a busy machine with inputs of hundreds of MB. Frequent flushes and a small queue
    # open that window on this small corpus.
    monkeypatch.setattr(worker_handlers, "DATA_BUFFER_TIME_LIMIT_MS", FLUSH_INTERVAL_MS)
    monkeypatch.setattr(data_plane, "_DEFAULT_SEND_QUEUE_MAX_BYTES", SEND_QUEUE_BYTES)
    ctx = prepare(load_manifest(build_corpus(shared, tmp_path)), ["--direct_num_workers=2"], log=lambda _: None)
    pools = curate(ctx)
    folder, reference = decide_afresh(ctx, pools, workers=1)
    decisions = read_decisions(folder)
    # The corpus exercises every stage: quality, exact and near duplicates, contamination.
    reasons = {r.reason for r in decisions.rejections}
    assert {"duplicate_exact", "near_duplicate", "duplicate_paragraph"} <= reasons and decisions.matches, reasons
    assert len([name for name in reference if name.startswith("verdicts/")]) == 2 * len(pools)

    with busy_cpus(usable_cores() + 1):
        for workers in (2, 2, 2, 2, 2, 3):
            _, run = decide_afresh(ctx, pools, workers)
            differing = sorted(name for name in reference.keys() | run.keys() if run.get(name) != reference.get(name))
            assert not differing, f"decide with {workers} workers differs from one worker's in {differing}"
