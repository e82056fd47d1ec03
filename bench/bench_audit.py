"""Audit query latency on a 1M-document output: shards, shard indexes, published documents and a ledger built
directly (mixes/shards.py, DocumentWriter) from real arXiv abstracts scaled up, then the audit index, then
random queries by token, by id and by input line, each opening the index afresh as the CLI does. The
baseline answers the same queries by scanning the Parquet shard indexes and ledger (no audit tool exists in
datatrove or dolma to compare against).

    python bench/bench_audit.py [--documents 1000000] [--queries 200] [--folder /tmp/bench-audit] [--reuse]

`--reuse` keeps an output a previous call built, so this process's peak RSS (the launcher's) and its worker
processes' peak RSS are those of building the index alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import resource
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curation.audit import AuditIndex
from curation.stages.audit_index import build_audit_index
from curation.stages.ledger import LEDGER_SCHEMA
from curation.writers import DocumentWriter
from mixes.shards import DocRecord, ShardMeta, ShardWriter
from mixes.tokenizer import load_tokenizer

REPO = Path(__file__).resolve().parents[1]
ABSTRACTS = REPO / "data" / "demo" / "papers" / "arxiv-abstracts-head1000.jsonl.gz"
TOKENIZER = REPO / "tokenizers" / "allenai_dolma2.json"
TOKENS_PER_DOCUMENT = 32  # token ids are copied, not queried: a short prefix keeps the shards small
TEXT_CHARS = 300
DROPPED_EVERY = 10
SHARDS = 8


def read_abstracts() -> list[dict]:
    with gzip.open(ABSTRACTS, "rt") as f:
        return [json.loads(line) for line in f]


def build_output(root: Path, documents: int) -> None:
    rows = read_abstracts()
    tokenizer = load_tokenizer(TOKENIZER)
    prefixes = [ids[:TOKENS_PER_DOCUMENT] for ids in tokenizer.encode_batch([r["text"] for r in rows])]
    meta = ShardMeta(
        "uint32", tokenizer.vocab_size, tokenizer.sha256, tokenizer.eos_id, None, "bench", "1.0.0", "0" * 64
    )
    uri = "/data/papers/arxiv.jsonl.gz"
    per_shard = -(-documents // SHARDS)
    ledger = {name: [] for name in LEDGER_SCHEMA.names}
    (root / "shards").mkdir(parents=True)
    with DocumentWriter(str(root / "documents" / "papers" / "part"), "jsonl.zst", 256 * 1024 * 1024) as docs:
        for shard in range(SHARDS):
            with ShardWriter(root / "shards", shard, meta) as writer:
                for i in range(shard * per_shard, min(documents, (shard + 1) * per_shard)):
                    row = rows[i % len(rows)]
                    doc_id = f"{row['id']}/{i}"
                    if i % DROPPED_EVERY == 0:
                        for name, value in (
                            ("doc_id", doc_id),
                            ("source", "papers"),
                            ("stage", "dedupe"),
                            ("filter", "exact_dedupe_v1"),
                            ("reason", "duplicate_exact"),
                            ("score", None),
                            (
                                "detail",
                                orjson.dumps(
                                    {
                                        "cluster_id": f"c{i}",
                                        "cluster_size": 2,
                                        "kept_id": f"{row['id']}/{i + 1}",
                                        "kept_source": "papers",
                                    }
                                ).decode(),
                            ),
                            ("uri", uri),
                        ):
                            ledger[name].append(value)
                        continue
                    writer.add(
                        np.append(prefixes[i % len(rows)], tokenizer.eos_id),
                        DocRecord(doc_id, "papers", 0, uri, i + 1, None),
                    )
                    docs.write(
                        {
                            "id": doc_id,
                            "text": row["text"][:TEXT_CHARS],
                            "source": "papers",
                            "metadata": {"url": f"https://arxiv.org/abs/{row['id']}"},
                            "attributes": {"dedupe/cluster_id": f"k{i}", "dedupe/cluster_size": 1},
                            "provenance": {"uri": uri, "line": i + 1, "offset": None, "text_hash": ""},
                        }
                    )
    (root / "ledger").mkdir()
    pq.write_table(pa.table(ledger, schema=LEDGER_SCHEMA), root / "ledger" / "rejections.parquet")


def timed(fn, queries) -> list[float]:
    out = []
    for q in queries:
        started = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - started) * 1000)
    return out


def summary(ms: list[float]) -> str:
    ordered = sorted(ms)
    return f"p50 {statistics.median(ordered):.2f} ms, p99 {ordered[int(0.99 * (len(ordered) - 1))]:.2f} ms, max {ordered[-1]:.2f} ms"


def _peak_mb(who: int) -> int:
    return resource.getrusage(who).ru_maxrss // 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--documents", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--folder", default="/tmp/bench-audit")
    parser.add_argument("--reuse", action="store_true", help="keep the output a previous call built")
    args = parser.parse_args()
    root = Path(args.folder)
    if not args.reuse:
        shutil.rmtree(root, ignore_errors=True)
        started = time.perf_counter()
        build_output(root, args.documents)
        print(f"built a {args.documents:,}-document output in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    records = build_audit_index(str(root))
    size = sum(p.stat().st_size for p in (root / "audit").rglob("*") if p.is_file())
    print(
        f"audit index: {records:,} records, {size / 1e6:.0f} MB, built in {time.perf_counter() - started:.1f} s; "
        f"peak RSS: this process {_peak_mb(resource.RUSAGE_SELF)} MB, its largest worker {_peak_mb(resource.RUSAGE_CHILDREN)} MB"
    )

    rng = random.Random(20261122)
    shard_tokens = {p.stem: p.stat().st_size // 4 for p in (root / "shards").glob("*.npy")}
    token_queries = [
        (s, rng.randrange(shard_tokens[s])) for s in rng.choices(sorted(shard_tokens), k=args.queries)
    ]
    id_queries = [f"{i}" for i in rng.sample(range(args.documents), args.queries)]
    rows = read_abstracts()
    id_queries = [f"{rows[int(i) % len(rows)]['id']}/{i}" for i in id_queries]

    def by_token(q):
        with AuditIndex(str(root)) as index:
            index.at_token(*q)

    def by_id(q):
        with AuditIndex(str(root)) as index:
            index.document(q, "papers")

    def by_input(q):
        with AuditIndex(str(root)) as index:
            index.at_input("/data/papers/arxiv.jsonl.gz", line=int(q.rsplit("/", 1)[1]) + 1)

    def scan_token(q):
        shard, offset = q
        table = pq.read_table(root / "shards" / f"{shard}.index")
        starts = table.column("start").to_numpy()
        table.slice(int(np.searchsorted(starts, offset, side="right")) - 1, 1).to_pylist()

    def scan_id(q):
        for path in sorted((root / "shards").glob("*.index")):
            table = pq.read_table(path, columns=["doc_id", "start", "end"])
            if len(table.filter(pc.equal(table.column("doc_id"), q))):
                break
        ledger = pq.read_table(root / "ledger" / "rejections.parquet")
        ledger.filter(pc.equal(ledger.column("doc_id"), q)).to_pylist()

    results = {}
    for name, fn, queries in (
        ("token (--shard --offset)", by_token, token_queries),
        ("id (--doc)", by_id, id_queries),
        ("input line (--input --line)", by_input, id_queries),
    ):
        results[name] = timed(fn, queries)
        print(f"audit by {name}: {summary(results[name])}")
    scan_queries = max(10, args.queries // 20)
    for name, fn, queries, ours in (
        ("token", scan_token, token_queries[:scan_queries], "token (--shard --offset)"),
        ("id", scan_id, id_queries[:scan_queries], "id (--doc)"),
    ):
        ms = timed(fn, queries)
        ratio = statistics.median(ms) / statistics.median(results[ours])
        print(
            f"baseline scan by {name} ({len(queries)} queries): {summary(ms)}; audit index is {ratio:,.0f}x faster at p50"
        )
    with AuditIndex(str(root)) as index:
        hit = index.at_token(*token_queries[0])
        print(
            f"--text of one document: {timed(lambda _: index.text(hit.record, hit.placement['id']), [0])[0]:.0f} ms (decompresses the one zstd frame holding it)"
        )


if __name__ == "__main__":
    main()
