"""Benchmark MinHash dedup against datatrove 0.10.1's four MinHash stages on the same corpus.

Subcommands (each prints one JSON line):
  datatrove --input X --workdir W   run in datatrove's venv: stages 1-4, clusters.json in W
  ours      --input X --workdir W   our Beam Deduplicate (MinHash, FineWeb defaults; --methods adds
                                    exact, url, paragraph) then the same filter-and-write pass;
                                    clusters.json in W; bytes shuffled by Beam and spilled to files
  signatures --input X              our sketching throughput on one core (docs/s) and a digest of
                                    every sketch, to compare two checkouts (PYTHONPATH=the other)
  eval      [--ours-repo R]         precision and recall of both on scripts/build_dedupe_eval.py's set
                                    (R: the checkout measured as ours, for a before/after)
  corpus    --out X --docs N        real text (IMDB, BBC), scaled up to N documents by seeded
                                    recombination of real review sentences; --near-copies makes the
                                    second half edited copies of the first
  run       [--sizes 10000,100000] [--reps 3] [--peer-max-docs N] [--methods minhash]
                                    everything above in subprocesses pinned to core 0, alternating the
                                    two tools; medians of wall, CPU and peak RSS as a Markdown table
Top-level imports are the standard library only: the `datatrove` subcommand runs in the peer's venv.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
PEER_PYTHON = Path.home() / "peers/datatrove/bin/python"
METHODS_HELP = "dedupe methods of ours, comma-separated: exact, url, minhash, paragraph"


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
    start, cpu_start = time.perf_counter(), time.process_time()
    for i, stage in enumerate(stages):
        tasks = config.num_buckets if i == 1 else 1
        LocalPipelineExecutor(
            pipeline=stage, tasks=tasks, workers=1, logging_dir=str(workdir / f"logs{i}")
        ).run()
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    clusters = {}
    for folder in ("kept", "removed"):
        for f in (workdir / folder).glob("*.jsonl"):
            for line in f.open():
                d = json.loads(line)
                cid = d["metadata"]["minhash_cluster_id"]
                clusters[d["id"]] = f"c{cid}" if cid != -1 else d["id"]
    (workdir / "clusters.json").write_text(json.dumps(clusters))
    removed = [json.loads(line)["id"] for f in (workdir / "removed").glob("*.jsonl") for line in f.open()]
    (workdir / "removed.json").write_text(json.dumps(sorted(removed)))
    return {"tool": "datatrove", "seconds": seconds, "cpu_seconds": cpu_seconds, "docs": len(clusters)}


def run_ours(
    input_path: Path, workdir: Path, workers: int = 1, batch_docs: int = 512, methods: str = "minhash"
) -> dict:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions

    from curation.engine import LOCAL_RUNNER
    from filters.dedupe import config as dedupe_config
    from filters.dedupe.transforms import Deduplicate

    method_configs = {
        "exact": dedupe_config.ExactDedupeConfig,
        "url": dedupe_config.UrlDedupeConfig,
        "minhash": dedupe_config.MinHashConfig,
        "paragraph": dedupe_config.ParagraphDedupeConfig,
    }
    config = dedupe_config.DedupeConfig(**{m: method_configs[m]() for m in methods.split(",")})

    workdir.mkdir(parents=True, exist_ok=True)
    spill = workdir / "work"
    start, cpu_start = time.perf_counter(), time.process_time()
    options = PipelineOptions(
        runner=LOCAL_RUNNER,
        direct_num_workers=workers,
        direct_running_mode="multi_processing" if workers > 1 else "in_memory",
    )
    p = beam.Pipeline(options=options)
    result = (
        p
        | "ListShards" >> beam.Create([str(input_path)])
        # As the pipeline reads pool files: batches are made inside a DoFn and go straight to
        # sketching, so no runner ever holds the documents' text.
        | "ReadBatches" >> beam.FlatMap(_read_batches, batch_docs)
        | "Deduplicate" >> Deduplicate(config, str(spill))
    )
    (
        result.rejections
        | "AllRejections" >> beam.Flatten(pipeline=p)
        | "DroppedOnly" >> beam.Filter(lambda r: r.reason != "duplicate_paragraph")
        | "RemovedAsJson" >> beam.Map(lambda r: json.dumps([r.doc_id, r.detail["cluster_id"]]))
        | "WriteRemoved" >> beam.io.WriteToText(str(workdir / "removed"))
    )
    (
        result.clusters
        | "ClustersAsJson"
        >> beam.Map(lambda kv: json.dumps([kv[0][1], kv[1]["cluster_id"], kv[1]["cluster_size"]]))
        | "WriteClusters" >> beam.io.WriteToText(str(workdir / "clusters"))
    )
    outcome = p.run()
    outcome.wait_until_finish()
    spilled = {part: sum(f.stat().st_size for f in (spill / part).glob("*")) for part in ("sketches", "runs")}
    shutil.rmtree(spill)
    removed = set()
    for f in workdir.glob("removed-*"):
        for line in f.open():
            removed.add(json.loads(line)[0])
    # The same last step as datatrove's stage 4: stream the input, drop removed ids, write the rest.
    with gzip.open(input_path, "rt") as src, (workdir / "kept.jsonl").open("w") as dst:
        for line in src:
            if json.loads(line)["id"] not in removed:
                dst.write(line)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    # Outside the measured region: finding the shuffles in the graph is the bench's accounting, not dedupe.
    shuffle_inputs = _dedupe_shuffle_inputs(p)
    docs = _write_clusters_json(workdir)
    (workdir / "removed.json").write_text(json.dumps(sorted(removed)))
    return {
        "tool": "ours",
        "workers": workers,
        "methods": methods,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "docs": docs,
        "beam_shuffled_bytes": _shuffled_bytes(outcome, shuffle_inputs),
        # Band rows and keyed records grouped through run files instead of a Beam shuffle.
        "run_bytes": spilled["runs"],
        "sketch_file_bytes": spilled["sketches"],
    }


def _dedupe_shuffle_inputs(pipeline) -> set[str]:
    """Ids of the PCollections that go into a GroupByKey inside Deduplicate (the bench's own writes excluded)."""
    components = pipeline.to_runner_api().components
    return {
        pcoll
        for t in components.transforms.values()
        if t.spec.urn == "beam:transform:group_by_key:v1" and t.unique_name.startswith("Deduplicate/")
        for pcoll in t.inputs.values()
    }


def _shuffled_bytes(outcome, pcollections: set[str]) -> float:
    """Bytes that went into those shuffles: the runner's element count times its sampled mean element size."""
    from apache_beam.metrics import monitoring_infos as mi

    counts, sizes = {}, {}
    for info in outcome.monitoring_infos():
        pcoll = info.labels.get("PCOLLECTION")
        if pcoll not in pcollections:
            continue
        if info.urn == mi.ELEMENT_COUNT_URN:
            counts[pcoll] = counts.get(pcoll, 0) + mi.extract_counter_value(info)
        elif info.urn == mi.SAMPLED_BYTE_SIZE_URN:
            n, total, _, _ = mi.extract_distribution(info)
            sampled_n, sampled_total = sizes.get(pcoll, (0, 0))
            sizes[pcoll] = (sampled_n + n, sampled_total + total)
    return sum(counts[pc] * sizes[pc][1] / sizes[pc][0] for pc in counts if sizes.get(pc, (0, 0))[0])


def _write_clusters_json(workdir: Path) -> int:
    """clusters.json as datatrove's side writes it (doc id -> cluster, own id when alone), streamed."""
    docs = 0
    with (workdir / "clusters.json").open("w") as out:
        out.write("{")
        for pattern, cluster_of in (
            ("removed-*", lambda r: r[1]),
            ("clusters-*", lambda r: r[1] if r[2] > 1 else r[0]),
        ):
            for f in sorted(workdir.glob(pattern)):
                for line in f.open():
                    row = json.loads(line)
                    out.write(("," if docs else "") + json.dumps(row[0]) + ":" + json.dumps(cluster_of(row)))
                    docs += 1
        out.write("}")
    return docs


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


def run_signatures(input_path: Path, max_docs: int = 100_000) -> dict:
    """Sketching throughput on one core (normalize, shingle, signatures, band keys)."""
    from filters.dedupe.config import DedupeConfig, MinHashConfig
    from filters.dedupe.sketch import make_hasher, sketch_batch

    batches = list(itertools.islice(_read_batches(str(input_path), 512), max_docs // 512 + 1))
    config = DedupeConfig(minhash=MinHashConfig())
    hasher = make_hasher(config)
    start = time.process_time()
    sketches = [s for batch in batches for s in sketch_batch(batch, config, hasher)]
    seconds = time.process_time() - start
    return {
        "tool": "signatures",
        "docs": len(sketches),
        "docs_per_cpu_second": len(sketches) / seconds,
        # Same digest before and after a change: the same signatures, band keys, shingles and keys.
        "sketch_digest": _sketch_digest(sketches),
    }


def _sketch_digest(sketches: list) -> str:
    import pickle

    import xxhash

    digest = xxhash.xxh3_128()
    for s in sketches:
        digest.update(pickle.dumps(tuple(s), protocol=pickle.HIGHEST_PROTOCOL))
    return digest.hexdigest()


def write_corpus(out: Path, docs: int, near_copies: bool = False) -> dict:
    """Real documents first (IMDB with its natural duplicates, BBC, code, OSCAR); beyond them, new
    documents made of seeded random runs of sentences from real reviews, so length and vocabulary
    stay realistic while the count grows. With `near_copies`, the second half of the corpus is the first
    half again with 3% of the words replaced (seeded): a duplicate-heavy corpus, where many documents
    are candidates and many candidate pairs fall on either side of the Jaccard check."""
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
    originals = docs - docs // 2 if near_copies else docs
    with gzip.open(out, "wt", compresslevel=1) as f:
        written = []
        for i in range(originals):
            if i < len(real):
                doc_id, text = real[i]
            else:
                doc_id, text = f"scaled/{i}", ". ".join(rng.choices(sentences, k=rng.randint(4, 14)))
            f.write(json.dumps({"id": doc_id, "text": text, "source": "bench"}) + "\n")
            if near_copies:
                written.append((doc_id, text))
        for doc_id, text in written[: docs - originals]:
            edited = " ".join("EDIT" if rng.random() < 0.03 else w for w in text.split(" "))
            f.write(json.dumps({"id": f"{doc_id}-near", "text": edited, "source": "bench"}) + "\n")
    return {"corpus": str(out), "docs": docs}


def run_eval(workdir: Path, ours_repo: Path) -> dict:
    """Both tools at their defaults on scripts/build_dedupe_eval.py's set: pair precision and recall, on
    everything and on the licence families, and removals that are not duplicates of their kept copy.
    `ours_repo` is the checkout whose dedupe runs as ours (another one measures a before/after)."""
    sys.path.insert(0, str(REPO))
    from scripts.build_dedupe_eval import build_eval, record_key, score_clustering

    records = build_eval(SHARED)
    workdir.mkdir(parents=True, exist_ok=True)
    corpus = workdir / "eval.jsonl.gz"
    with gzip.open(corpus, "wt", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps({"id": record_key(r), "text": r["text"], "source": "eval"}) + "\n")
    tools = {"ours": ([sys.executable], ours_repo)}
    if PEER_PYTHON.exists():
        tools["datatrove"] = ([str(PEER_PYTHON)], REPO)
    scores = {"records": len(records)}
    for tool, (python, repo) in tools.items():
        out = workdir / tool
        shutil.rmtree(out, ignore_errors=True)
        cmd = [*python, __file__, tool, "--input", str(corpus), "--workdir", str(out)]
        subprocess.run(cmd, check=True, capture_output=True, env={**os.environ, "PYTHONPATH": str(repo)})
        clusters = json.loads((out / "clusters.json").read_text())
        removed = set(json.loads((out / "removed.json").read_text()))
        scores[tool] = score_clustering(records, clusters, removed)
    return scores


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
    peak_kb = next(
        int(line.split(":")[1]) for line in out.stderr.splitlines() if "Maximum resident set size" in line
    )
    result["peak_rss_mb"] = peak_kb / 1024
    return result


def _median(runs: list[dict], field: str) -> float:
    return statistics.median(r[field] for r in runs) if runs else float("nan")


def run_all(
    sizes: list[int], workdir: Path, peer_max_docs: int, reps: int, methods: str, near_copies: bool = False
) -> None:
    """Per size: sketching throughput, then `reps` runs of ours and of datatrove, alternating so both
    see the same machine load, each pinned to core 0; medians of wall, CPU and peak RSS."""
    rows = []
    me = [sys.executable, __file__]
    for n in sizes:
        corpus = workdir / f"corpus-{'near-' if near_copies else ''}{n}.jsonl.gz"
        if not corpus.exists():
            write_corpus(corpus, n, near_copies)
        sig = _measured(["taskset", "-c", "0"] + me + ["signatures", "--input", str(corpus)])
        ours, peer = [], []
        for rep in range(reps if n <= peer_max_docs else 1):
            for tool, runs in (("ours", ours), ("datatrove", peer)):
                if tool == "datatrove" and n > peer_max_docs:
                    continue
                out = workdir / f"{tool}-{n}-{rep}"
                shutil.rmtree(out, ignore_errors=True)
                python = me if tool == "ours" else [str(PEER_PYTHON), __file__]
                cmd = ["taskset", "-c", "0"] + python + [tool, "--input", str(corpus), "--workdir", str(out)]
                if tool == "ours":
                    cmd += ["--methods", methods]
                runs.append(_measured(cmd))
                print(json.dumps({"docs": n, "rep": rep, **runs[-1]}), flush=True)
        rows.append((n, sig, ours, peer))
    print(
        "| docs | sketch docs/s/core | runs | ours wall s | datatrove wall s | wall ratio | ours CPU s "
        "| datatrove CPU s | CPU ratio | ours peak RSS MB | bytes/doc at peak | peak growth bytes per added doc "
        "| shuffled key bytes/doc (Beam + runs) | sketch file bytes/doc | datatrove peak RSS MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    previous = None
    for n, sig, ours, peer in rows:
        wall, cpu = _median(ours, "seconds"), _median(ours, "cpu_seconds")
        peer_wall, peer_cpu = _median(peer, "seconds"), _median(peer, "cpu_seconds")
        rss = _median(ours, "peak_rss_mb")
        growth = f"{(rss - previous[1]) * 2**20 / (n - previous[0]):,.0f}" if previous else ""
        previous = (n, rss)
        shuffled = (_median(ours, "beam_shuffled_bytes") + _median(ours, "run_bytes")) / n
        peer_cells = (
            [f"{peer_wall:.1f}", f"{peer_wall / wall:.1f}x"] if peer else ["not run", ""],
            [f"{peer_cpu:.1f}", f"{peer_cpu / cpu:.1f}x"] if peer else ["not run", ""],
        )
        cells = [
            f"{n:,}",
            f"{sig['docs_per_cpu_second']:,.0f}",
            str(len(ours)),
            f"{wall:.1f}",
            *peer_cells[0],
            f"{cpu:.1f}",
            *peer_cells[1],
            f"{rss:,.0f}",
            f"{rss * 2**20 / n:,.0f}",
            growth,
            f"{shuffled:,.0f}",
            f"{_median(ours, 'sketch_file_bytes') / n:,.0f}",
            f"{_median(peer, 'peak_rss_mb'):.0f}" if peer else "",
        ]
        print("| " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("datatrove", "ours"):
        p = sub.add_parser(name)
        p.add_argument("--input", type=Path, required=True)
        p.add_argument("--workdir", type=Path, required=True)
        if name == "ours":
            p.add_argument("--workers", type=int, default=1)
            p.add_argument("--methods", default="minhash", help=METHODS_HELP)
    sub.add_parser("signatures").add_argument("--input", type=Path, required=True)
    evaluation = sub.add_parser("eval")
    evaluation.add_argument("--workdir", type=Path, default=Path("/tmp/bench_dedupe_eval"))
    evaluation.add_argument("--ours-repo", type=Path, default=REPO, help="checkout whose dedupe is measured")
    corpus = sub.add_parser("corpus")
    corpus.add_argument("--out", type=Path, required=True)
    corpus.add_argument("--docs", type=int, required=True)
    corpus.add_argument("--near-copies", action="store_true", help="second half: edited copies of the first")
    run = sub.add_parser("run")
    run.add_argument("--sizes", default="10000,100000")
    run.add_argument("--workdir", type=Path, default=Path("/tmp/bench_dedupe"))
    run.add_argument("--peer-max-docs", type=int, default=100_000, help="run datatrove up to this size")
    run.add_argument("--reps", type=int, default=3, help="runs per tool at sizes where both run")
    run.add_argument("--near-copies", action="store_true", help="duplicate-heavy corpus (see `corpus`)")
    run.add_argument("--methods", default="minhash", help=METHODS_HELP + "; datatrove runs only for minhash")
    args = parser.parse_args()
    if args.command == "datatrove":
        print(json.dumps(run_datatrove(args.input.resolve(), args.workdir.resolve())))
    elif args.command == "ours":
        print(
            json.dumps(
                run_ours(args.input.resolve(), args.workdir.resolve(), args.workers, methods=args.methods)
            )
        )
    elif args.command == "eval":
        print(json.dumps(run_eval(args.workdir.resolve(), args.ours_repo.resolve())))
    elif args.command == "signatures":
        print(json.dumps(run_signatures(args.input)))
    elif args.command == "corpus":
        print(json.dumps(write_corpus(args.out, args.docs, args.near_copies)))
    else:
        args.workdir.mkdir(parents=True, exist_ok=True)
        peer_max = args.peer_max_docs if args.methods == "minhash" else 0
        sizes = [int(s) for s in args.sizes.split(",")]
        run_all(sizes, args.workdir, peer_max, args.reps, args.methods, args.near_copies)


if __name__ == "__main__":
    main()
