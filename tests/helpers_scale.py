"""Corpora of any size from real documents, and the launcher's own memory at the end of a run over them.

The 1,000 real arXiv abstracts of the demo data are repeated under distinct ids. In each copy, half the
documents get the copy number appended (kept: tokenized, published, mixed and indexed for audit), and in
every copy after the first the other half keep the text of the first copy (exact duplicates, dropped by
dedupe into the ledger), so every corpus-sized output grows with the corpus."""

from __future__ import annotations

import gzip
import resource
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import yaml

REPO = Path(__file__).resolve().parents[1]
ABSTRACTS = REPO / "data" / "demo" / "papers" / "arxiv-abstracts-head1000.jsonl.gz"
TOKENIZER = REPO / "tokenizers" / "allenai_dolma2.json"


def write_corpus(folder: Path, documents: int, files: int = 4) -> None:
    """`documents` (a multiple of 1,000) documents, of which (documents - 1,000) / 2 are exact duplicates."""
    with gzip.open(ABSTRACTS) as f:
        originals = [orjson.loads(line) for line in f]
    folder.mkdir(parents=True, exist_ok=True)
    outs = [gzip.open(folder / f"part-{i:03d}.jsonl.gz", "wb", compresslevel=1) for i in range(files)]
    for n in range(documents):
        doc = dict(originals[n % len(originals)])
        copy = n // len(originals)
        doc["id"] = f"{doc['id']}-c{copy}"
        if n % 2:
            # Letters, not digits: dedupe's normalization would make "copy 3" and "copy 5" the same text.
            doc["text"] = f"{doc['text']} copy {''.join(chr(ord('a') + int(d)) for d in str(copy))}"
        outs[n % files].write(orjson.dumps(doc) + b"\n")
    for out in outs:
        out.close()


def write_scale_manifest(folder: Path, documents: int) -> Path:
    write_corpus(folder / "data", documents)
    body = {
        "name": "scale",
        "version": f"1.0.{documents}",
        "seed": 7,
        "sources": [{"name": "papers", "paths": ["data/*.jsonl.gz"]}],
        "dedupe": {"exact": {"scope": "global"}},
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 1_000_000},
    }
    path = folder / "manifest.yaml"
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def end_of_run_memory(manifest: Path, beam_args: list[str]) -> dict[str, Any]:
    """Run every phase before the mix, then the mix's plan, then the end of the run (the mix with the ledger,
    published documents, audit index and checksums, then stats, card and lock), decide, the plan and the end
    of the run with the launcher's Python allocations traced: the peak each reaches, and the launcher
    process's peak RSS before and after the end of the run (Beam's multi-processing workers are other
    processes)."""
    from curation.pipeline import curate, decide, prepare, tokenize
    from curation.report import finish_run
    from curation.stages.mix_plan import plan_mix
    from mixes.manifest import load_manifest

    ctx = prepare(load_manifest(str(manifest)), beam_args, log=lambda _: None)
    pools = curate(ctx)
    # The local runner runs in this process: traced, decide shows what the runner holds between its stages.
    (decisions, folder), decide_peak = _traced(decide, ctx, pools)
    token_files = tokenize(ctx, pools, decisions, folder)
    # Traced apart from the shard writing, whose tokenizer alone is some 30 MB of Python objects.
    _, plan_peak = _traced(plan_mix, ctx, token_files)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    stats, peak = _traced(finish_run, ctx, pools, folder, token_files)
    return {
        "documents": stats["totals"]["read"],
        "rejected": stats["totals"]["rejected"],
        "kept": stats["totals"]["kept_documents"],
        "mixed_documents": sum(shard["documents"] for shard in stats["shards"]),
        "decide_traced_peak_bytes": decide_peak,
        "plan_traced_peak_bytes": plan_peak,
        "traced_peak_bytes": peak,
        "rss_peak_before_bytes": rss_before,
        "rss_peak_after_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
    }


def _traced(step, *args) -> tuple[Any, int]:
    """What `step(*args)` returns, and the peak of the Python allocations it made in this process."""
    tracemalloc.start()
    try:
        result = step(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
