"""Shared builders for the dedupe tests: real documents from ../shared and a runner that executes
`Deduplicate` on the DirectRunner and reads its outputs back from files (works with any worker count)."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

from curation import data_plane_guard
from curation.document import Document
from curation.engine import LOCAL_RUNNER, pipeline_options
from curation.stages.corpus import DecideCorpus, decisions_digest
from curation.storage import S3_REQUESTS_METRIC
from filters.dedupe.config import DedupeConfig
from filters.dedupe.transforms import Deduplicate

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(__file__).resolve().parents[2] / "shared"
CC_SAMPLE = SHARED / "corpora/web/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
CODE_SAMPLE = SHARED / "corpora/code/github-permissive-sample.jsonl.gz"


def shared_or_skip(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the dedupe tests read real text from ../shared")
    return path


def cc_documents(limit: int | None = None, source: str = "web") -> list[Document]:
    """Real Common Crawl documents (Dolma test data, Apache-2.0) with their URLs."""
    docs = []
    with gzip.open(shared_or_skip(CC_SAMPLE), "rt", encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            docs.append(Document(d["id"], d["text"], source, metadata={"url": d["metadata"].get("url")}))
    long_enough = [d for d in docs if len(d.text.split()) >= 200]
    return long_enough[:limit]


def eval_builder():
    """scripts/build_dedupe_eval.py as a module: the evaluation set, its truth and its licence families."""
    spec = importlib.util.spec_from_file_location("build_dedupe_eval", REPO / "scripts/build_dedupe_eval.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def code_sample_texts(ids: set[str]) -> dict[str, str]:
    """Texts of files of the permissive code sample by id (repo:path)."""
    with gzip.open(shared_or_skip(CODE_SAMPLE), "rt", encoding="utf-8") as f:
        rows = (json.loads(line) for line in f)
        return {r["id"]: r["text"] for r in rows if r["id"] in ids}


def batched(docs: list[Document], size: int) -> list[list[Document]]:
    return [docs[i : i + size] for i in range(0, len(docs), size)]


def run_dedupe(
    docs: list[Document], config: DedupeConfig, out: Path, workers: int = 1, batch_size: int = 7
) -> dict:
    """Outputs of `Deduplicate` as plain Python: rejections and span_rejections (lists of dicts),
    clusters and paragraph_edits (dicts keyed by (source, doc_id))."""
    mode = {"runner": LOCAL_RUNNER, "direct_num_workers": workers}
    if workers > 1:
        mode["direct_running_mode"] = "multi_processing"
    with beam.Pipeline(options=PipelineOptions(**mode)) as p:
        result = p | beam.Create(batched(docs, batch_size)) | Deduplicate(config, str(out / "work"))
        rows = {
            "rejections": result.rejections | "AllRejections" >> beam.Flatten(pipeline=p),
            "span_rejections": result.span_rejections,
        }
        for name, pcoll in rows.items():
            if pcoll is None:  # no paragraph dedupe
                continue
            (
                pcoll
                | f"{name}Json" >> beam.Map(lambda r: json.dumps(r.to_dict(), sort_keys=True))
                | f"{name}Write" >> beam.io.WriteToText(str(out / name))
            )
        for name in ("clusters", "paragraph_edits"):
            if getattr(result, name) is None:
                continue
            (
                getattr(result, name)
                | f"{name}Json" >> beam.Map(lambda kv: json.dumps([list(kv[0]), kv[1]], sort_keys=True))
                | f"{name}Write" >> beam.io.WriteToText(str(out / name))
            )

    def lines(name: str) -> list:
        return sorted((json.loads(line) for f in out.glob(f"{name}-*") for line in f.open()), key=json.dumps)

    return {
        "rejections": lines("rejections"),
        "span_rejections": lines("span_rejections"),
        "clusters": {tuple(k): v for k, v in lines("clusters")},
        "paragraph_edits": {tuple(k): [tuple(s) for s in v] for k, v in lines("paragraph_edits")},
    }


def decide_with_scratch(
    ctx, pools: list, work_dir: str, beam_args: list[str]
) -> tuple[dict[str, str], Counter]:
    """Decide over `pools` afresh, as the run does but with its scratch in `work_dir` (local or s3://): the
    sha256 of every file of the (local) decisions folder by relative path, and the S3 requests that every
    worker sent, by (step, operation)."""
    folder = Path(ctx.layout.decisions_dir(decisions_digest(ctx.manifest, ctx.sources, pools, ctx.loaded)))
    shutil.rmtree(folder, ignore_errors=True)
    data_plane_guard.install()
    p = beam.Pipeline(options=pipeline_options(beam_args, len(pools)))
    _ = (
        p
        | "ListPools" >> beam.Create(list(enumerate(pools)))
        | "DecideCorpus" >> DecideCorpus(ctx, str(folder), work_dir, [pool.input_uri for pool in pools])
    )
    result = p.run()
    result.wait_until_finish()
    requests: Counter = Counter()
    for counter in result.metrics().query(MetricsFilter().with_namespace(S3_REQUESTS_METRIC))["counters"]:
        requests[counter.key.step, counter.key.metric.name] += counter.result
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}, requests
