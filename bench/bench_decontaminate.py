"""Decontamination speed and index memory, against datatrove's NGramsDecontFilter in the same run.

Every ../shared/evals benchmark (manifests/evals/olmo-core-2024.yaml) is indexed; detection runs over all
real web documents in ../shared/corpora/web. Run pinned to one core, by hand:

    taskset -c 0 python bench/bench_decontaminate.py [--repeats 5]

The peer gets the same eval text (each item's fields, one per line) as 13-gram hashes written in its own
index format; datatrove's indexer itself needs lighteval and network, so its hashing functions are called
directly, as its indexer does.
"""

from __future__ import annotations

import argparse
import gc
import resource
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

# The repo root first, so tests/filters (a namespace folder) cannot shadow the `filters` package.
_REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(_REPO), str(_REPO / "tests")]

from helpers_decontaminate import SUITE_CONFIG, render, suite_items, web_texts  # noqa: E402

from curation.batching import BATCH_DOCUMENTS  # noqa: E402
from filters.decontaminate.detect import detect_all  # noqa: E402
from filters.decontaminate.index import DecontaminationIndex, build_index  # noqa: E402


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _median_rate(run, count: int, repeats: int) -> tuple[float, float]:
    """Median documents per second over `repeats` runs, by process CPU time and by wall time."""
    cpu, wall = [], []
    for _ in range(repeats):
        gc.collect()
        c0, w0 = time.process_time(), time.perf_counter()
        run()
        cpu.append(count / (time.process_time() - c0))
        wall.append(count / (time.perf_counter() - w0))
    return statistics.median(cpu), statistics.median(wall)


def bench_ours(texts: list[str], index_dir: Path, repeats: int) -> dict:
    t0 = time.perf_counter()
    path, _ = build_index(SUITE_CONFIG, _REPO, index_dir)
    build_seconds = time.perf_counter() - t0
    rss_before = _rss_mib()
    tracemalloc.start()
    index = DecontaminationIndex.load(path)
    index.key_filter, index.anchor_filter  # noqa: B018 (built lazily on first detection; counted as index memory)
    traced_mib = tracemalloc.get_traced_memory()[0] / 2**20
    tracemalloc.stop()

    def run():
        # In batches, as the pipeline's decontamination stage gets documents.
        return [
            m
            for k in range(0, len(texts), BATCH_DOCUMENTS)
            for m in detect_all(index, texts[k : k + BATCH_DOCUMENTS])
        ]

    flagged = sum(1 for matches in run() if matches)
    cpu, wall = _median_rate(run, len(texts), repeats)
    return {
        "items": sum(index.items_indexed.values()),
        "ngram_keys": len(index.ngram_keys),
        "anchor_keys": len(index.anchor_keys),
        "vocab_words": len(index.vocab),
        "build_seconds": build_seconds,
        "file_mib": Path(path).stat().st_size / 2**20,
        "array_mib": (index.nbytes + index.key_filter.nbytes + index.anchor_filter.nbytes) / 2**20,
        "traced_mib": traced_mib,
        "rss_delta_mib": _rss_mib() - rss_before,
        "flagged": flagged,
        "cpu_docs_per_s": cpu,
        "wall_docs_per_s": wall,
    }


def bench_datatrove(texts: list[str], index_dir: Path, repeats: int) -> dict:
    from datatrove.data import Document as DtDocument
    from datatrove.pipeline.decont.n_grams import NGramsDecontConfig, NGramsDecontFilter
    from datatrove.utils.hashing import create_hash_func
    from datatrove.utils.text import ngrams, simplify_text
    from datatrove.utils.word_tokenizers import load_word_tokenizer

    config = NGramsDecontConfig(n_grams=13, find_query_ngrams=True)
    tokenizer = load_word_tokenizer("en")
    raw_hash = create_hash_func(config.hash_config)

    def hash_func(text: str) -> int:
        # datatrove 0.10 hands str to xxhash, which xxhash 4 refuses; UTF-8 bytes give the same hashes.
        return raw_hash(text.encode("utf-8"))

    by_benchmark: dict[str, set[int]] = {}
    for item in suite_items():
        tokens = tokenizer.word_tokenize(simplify_text(render(item), config.norm_config))
        hashes = map(hash_func, map(" ".join, ngrams(tokens, config.n_grams)))
        by_benchmark.setdefault(item.benchmark, set()).update(hashes)
    for name, hashes in by_benchmark.items():
        np.array(sorted(hashes), dtype=config.hash_config.np_descr).tofile(index_dir / f"{name}.index.hashes")
    peer = NGramsDecontFilter(str(index_dir), config=config)
    peer.hash_func = hash_func
    rss_before = _rss_mib()
    peer.load_index_hashes()
    rss_delta = _rss_mib() - rss_before
    docs = [DtDocument(text=t, id=str(i)) for i, t in enumerate(texts)]

    def run():
        return [peer.filter(d) for d in docs]

    flagged = sum(1 for kept in run() if kept is not True)
    cpu, wall = _median_rate(run, len(docs), repeats)
    return {
        "ngram_keys": len(peer._index_hashes),
        "rss_delta_mib": rss_delta,
        "flagged": flagged,
        "cpu_docs_per_s": cpu,
        "wall_docs_per_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    texts = web_texts()
    mib = sum(len(t.encode()) for t in texts) / 2**20
    print(f"corpus: {len(texts)} real web documents, {mib:.1f} MiB")
    with tempfile.TemporaryDirectory() as ours_dir, tempfile.TemporaryDirectory() as peer_dir:
        ours = bench_ours(texts, Path(ours_dir), args.repeats)
        peer = bench_datatrove(texts, Path(peer_dir), args.repeats)
    for name, result in (("curation decon_v1", ours), ("datatrove NGramsDecontFilter", peer)):
        print(name, {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()})
    print(f"speed ratio (ours / datatrove, CPU time): {ours['cpu_docs_per_s'] / peer['cpu_docs_per_s']:.2f}")
    print(f"peak RSS of the whole run: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
