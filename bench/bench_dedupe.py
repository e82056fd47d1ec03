"""Benchmark MinHash dedup against datatrove 0.10.1's four MinHash stages on the same corpus.

Subcommands (each prints one JSON line):
  datatrove --input X --workdir W   run in datatrove's venv: stages 1-4, clusters.json in W
  ours      --input X --workdir W   our Beam Deduplicate (MinHash, FineWeb defaults) then the same
                                    filter-and-write pass; clusters.json in W
  signatures --input X              our signature throughput on one core (docs/s)
  corpus    --out X --docs N        real text (IMDB, BBC, code, OSCAR), scaled up to N documents by
                                    seeded word-level recombination of real reviews
  run       [--sizes 10000,100000]  everything above in subprocesses with peak RSS; a Markdown table
Top-level imports are the standard library only: the `datatrove` subcommand runs in the peer's venv.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PEER_PYTHON = Path.home() / "peers/datatrove/bin/python"


def run_datatrove(input_path: Path, workdir: Path) -> dict:
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupCluster, MinhashDedupFilter, MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupBuckets
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    config = MinhashConfig()
    reader = JsonlReader(str(input_path.parent), glob_pattern=input_path.name, text_key="text", id_key="id")
    stages = [
        [reader, MinhashDedupSignature(output_folder=str(workdir / "sigs"), config=config)],
        [MinhashDedupBuckets(str(workdir / "sigs"), str(workdir / "buckets"), config=config)],
        [
            MinhashDedupCluster(
                str(workdir / "buckets"), str(workdir / "remove"), config=config, save_cluster_id=True
            )
        ],
        [
            reader,
            MinhashDedupFilter(
                str(workdir / "remove"),
                exclusion_writer=JsonlWriter(str(workdir / "removed"), compression=None),
                load_cluster_ids=True,
            ),
            JsonlWriter(str(workdir / "kept"), compression=None),
        ],
    ]
    start = time.perf_counter()
    for i, stage in enumerate(stages):
        tasks = config.num_buckets if i == 1 else 1
        LocalPipelineExecutor(
            pipeline=stage, tasks=tasks, workers=1, logging_dir=str(workdir / f"logs{i}")
        ).run()
    seconds = time.perf_counter() - start
    clusters = {}
    for folder in ("kept", "removed"):
        for f in (workdir / folder).glob("*.jsonl"):
            for line in f.open():
                d = json.loads(line)
                cid = d["metadata"]["minhash_cluster_id"]
                clusters[d["id"]] = f"c{cid}" if cid != -1 else d["id"]
    (workdir / "clusters.json").write_text(json.dumps(clusters))
    return {"tool": "datatrove", "seconds": seconds, "docs": len(clusters)}


def run_ours(input_path: Path, workdir: Path, workers: int = 1, batch_docs: int = 512) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from filters.dedupe.config import DedupeConfig, MinHashConfig
    from filters.dedupe.transforms import Deduplicate

    workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    options = PipelineOptions(
        direct_num_workers=workers, direct_running_mode="multi_processing" if workers > 1 else "in_memory"
    )
    with beam.Pipeline(options=options) as p:
        result = (
            p
            | "ListShards" >> beam.Create([str(input_path)])
            # As the pipeline reads pool files: batches are made inside a DoFn and go straight to
            # sketching, so no runner ever holds the documents' text.
            | "ReadBatches" >> beam.FlatMap(_read_batches, batch_docs)
            | "Deduplicate" >> Deduplicate(DedupeConfig(minhash=MinHashConfig()))
        )
        (
            result.rejections
            | "RemovedAsJson" >> beam.Map(lambda r: json.dumps([r.doc_id, r.detail["cluster_id"]]))
            | "WriteRemoved" >> beam.io.WriteToText(str(workdir / "removed"))
        )
        (
            result.clusters
            | "ClustersAsJson"
            >> beam.Map(lambda kv: json.dumps([kv[0][1], kv[1]["cluster_id"], kv[1]["cluster_size"]]))
            | "WriteClusters" >> beam.io.WriteToText(str(workdir / "clusters"))
        )
    clusters, removed = {}, set()
    for f in workdir.glob("removed-*"):
        for line in f.open():
            doc_id, cluster = json.loads(line)
            clusters[doc_id] = cluster
            removed.add(doc_id)
    for f in workdir.glob("clusters-*"):
        for line in f.open():
            doc_id, cluster, size = json.loads(line)
            clusters[doc_id] = cluster if size > 1 else doc_id
    # The same last step as datatrove's stage 4: stream the input, drop removed ids, write the rest.
    with gzip.open(input_path, "rt") as src, (workdir / "kept.jsonl").open("w") as dst:
        for line in src:
            if json.loads(line)["id"] not in removed:
                dst.write(line)
    seconds = time.perf_counter() - start
    (workdir / "clusters.json").write_text(json.dumps(clusters))
    return {"tool": "ours", "workers": workers, "seconds": seconds, "docs": len(clusters)}


def _read_batches(path: str, batch_docs: int):
    from curation.document import Document

    batch = []
    with gzip.open(path, "rt") as f:
        for line in f:
            d = json.loads(line)
            batch.append(Document(d["id"], d["text"], d.get("source", "bench")))
            if len(batch) == batch_docs:
                yield batch
                batch = []
    if batch:
        yield batch


def run_signatures(input_path: Path) -> dict:
    from filters.dedupe.config import DedupeConfig, MinHashConfig
    from filters.dedupe.sketch import make_hasher, sketch_batch

    docs = [b for batch in _read_batches(str(input_path), 1000) for b in [batch]]
    config = DedupeConfig(minhash=MinHashConfig())
    hasher = make_hasher(config)
    start = time.process_time()
    count = sum(len(sketch_batch(batch, config, hasher)) for batch in docs)
    return {"tool": "signatures", "docs": count, "docs_per_cpu_second": count / (time.process_time() - start)}


def write_corpus(out: Path, docs: int) -> dict:
    """Real documents first (IMDB with its natural duplicates, BBC, code, OSCAR); beyond them, new
    documents made of seeded random runs of sentences from real reviews, so length and vocabulary
    stay realistic while the count grows."""
    import random

    sys.path.insert(0, str(REPO))
    from scripts.build_dedupe_eval import _read_jsonl

    corpora = SHARED / "corpora"
    real = [
        (f"imdb/{r['id']}", r["text"])
        for r in _read_jsonl(corpora / "reviews/imdb-aclImdb-50k-labeled.jsonl.zst")
    ] + [(f"bbc/{r['id']}", r["text"]) for r in _read_jsonl(corpora / "news/bbc-fulltext-2225.jsonl.gz")]
    rng = random.Random(20261122)
    sentences = [s for _, t in real[:20000] for s in t.split(". ") if len(s) > 20]
    with gzip.open(out, "wt", compresslevel=1) as f:
        for i in range(docs):
            if i < len(real):
                doc_id, text = real[i]
            else:
                doc_id, text = f"scaled/{i}", ". ".join(rng.choices(sentences, k=rng.randint(4, 14)))
            f.write(json.dumps({"id": doc_id, "text": text, "source": "bench"}) + "\n")
    return {"corpus": str(out), "docs": docs}


def _measured(cmd: list[str]) -> dict:
    """Run a subcommand in a child process under `/usr/bin/time -v`: its JSON line plus its peak RSS."""
    out = subprocess.run(
        ["/usr/bin/time", "-v", *cmd],
        check=True,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    peak_kb = next(int(line.split(":")[1]) for line in out.stderr.splitlines() if "Maximum resident set size" in line)
    result["peak_rss_mb"] = peak_kb / 1024
    return result


def run_all(sizes: list[int], workdir: Path, peer_max_docs: int) -> None:
    rows = []
    for n in sizes:
        corpus = workdir / f"corpus-{n}.jsonl.gz"
        if not corpus.exists():
            write_corpus(corpus, n)
        me = [sys.executable, __file__]
        sig = _measured(me + ["signatures", "--input", str(corpus)]) if n <= 100_000 else {}
        ours = _measured(
            ["taskset", "-c", "0"]
            + me
            + ["ours", "--input", str(corpus), "--workdir", str(workdir / f"ours-{n}")]
        )
        peer = {}
        if n <= peer_max_docs:
            peer = _measured(
                [
                    "taskset",
                    "-c",
                    "0",
                    str(PEER_PYTHON),
                    __file__,
                    "datatrove",
                    "--input",
                    str(corpus),
                    "--workdir",
                    str(workdir / f"dt-{n}"),
                ]
            )
        rows.append((n, sig, ours, peer))
        print(json.dumps({"docs": n, "signatures": sig, "ours": ours, "datatrove": peer}), flush=True)
    print(
        "| docs | signatures docs/s/core | ours wall s | datatrove wall s | speedup | ours peak RSS MB | bytes/doc |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, sig, ours, peer in rows:
        speed = f"{peer['seconds'] / ours['seconds']:.1f}x" if peer else "n/a"
        print(
            f"| {n:,} | {sig.get('docs_per_cpu_second', float('nan')):,.0f} | {ours['seconds']:.1f} | "
            f"{peer.get('seconds', float('nan')):.1f} | {speed} | {ours['peak_rss_mb']:.0f} | "
            f"{ours['peak_rss_mb'] * 2**20 / n:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("datatrove", "ours"):
        p = sub.add_parser(name)
        p.add_argument("--input", type=Path, required=True)
        p.add_argument("--workdir", type=Path, required=True)
        if name == "ours":
            p.add_argument("--workers", type=int, default=1)
    sub.add_parser("signatures").add_argument("--input", type=Path, required=True)
    corpus = sub.add_parser("corpus")
    corpus.add_argument("--out", type=Path, required=True)
    corpus.add_argument("--docs", type=int, required=True)
    run = sub.add_parser("run")
    run.add_argument("--sizes", default="10000,100000")
    run.add_argument("--workdir", type=Path, default=Path("/tmp/bench_dedupe"))
    run.add_argument("--peer-max-docs", type=int, default=100_000, help="run datatrove up to this size")
    args = parser.parse_args()
    if args.command == "datatrove":
        print(json.dumps(run_datatrove(args.input.resolve(), args.workdir.resolve())))
    elif args.command == "ours":
        print(json.dumps(run_ours(args.input.resolve(), args.workdir.resolve(), args.workers)))
    elif args.command == "signatures":
        print(json.dumps(run_signatures(args.input)))
    elif args.command == "corpus":
        print(json.dumps(write_corpus(args.out, args.docs)))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run_all([int(s) for s in args.sizes.split(",")], args.workdir, args.peer_max_docs)


if __name__ == "__main__":
    main()
