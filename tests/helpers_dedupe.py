"""Shared builders for the dedupe tests: real documents from ../shared and a runner that executes
`Deduplicate` on the DirectRunner and reads its outputs back from files (works with any worker count)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from curation.document import Document
from curation.engine import LOCAL_RUNNER
from filters.dedupe.config import DedupeConfig
from filters.dedupe.transforms import Deduplicate

SHARED = Path(__file__).resolve().parents[2] / "shared"
CC_SAMPLE = SHARED / "corpora/web/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


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
        for name in ("rejections", "span_rejections"):
            (
                getattr(result, name)
                | f"{name}Json" >> beam.Map(lambda r: json.dumps(r.to_dict(), sort_keys=True))
                | f"{name}Write" >> beam.io.WriteToText(str(out / name))
            )
        for name in ("clusters", "paragraph_edits"):
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
