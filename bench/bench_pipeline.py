"""Phase one on Beam (`CurateFiles`: read, score with no filters, write the pool) against the plain
zstandard + orjson loop of `bench_read_write.py` on the same multi-file inputs (JSONL.zst and WARC).

Per core: every implementation pinned with `taskset -c 0`. Scaling: 1 vs 2 Beam workers pinned to both
cores, beside the plain loop run as 2 processes (what the machine gives two independent workers). Each
Beam run first runs the same pipeline on a one-document file, so the pipeline's start-up (spawning and
tearing down the workers) is reported apart from the steady-state rate. Besides wall time, every run
records the CPU seconds of its whole process tree (Beam's workers included), which other jobs on this
shared 2-core machine barely disturb. Medians of interleaved runs, each a fresh pinned process. By hand:

    python bench/bench_pipeline.py [--docs 200000] [--files 16] [--runs 3] [--workdir /tmp/bench-pipeline]

The raw samples go to <workdir>/samples.json; `--render <that file>` rebuilds the section from them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import benchmarks_md
from bench_read_write import (
    _cpu_model,
    make_jsonl_zst_corpus,
    make_warc_corpus,
    plain_loop,
    plain_warc_loop,
)

HEADING = "## Pipeline on Beam (read and write)"
PLAIN_LOOPS = {"jsonl": plain_loop, "warc": plain_warc_loop}
SOURCE = "bench"

# Beam option sets; "default" is exactly what `curation run` passes (curation.engine.pipeline_options).
BEAM_CONFIGS = {
    "default": [],
    "multi_processing_1": ["--direct_running_mode=multi_processing", "--direct_num_workers=1"],
    "multi_processing_2": ["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
    "in_memory_1": ["--direct_running_mode=in_memory", "--direct_num_workers=1"],
}
LABELS = {
    "plain": "plain zstd+orjson loop",
    "curate_file": "`curate_file` in a loop, no Beam",
    "default": "Beam, `curation run` defaults (one worker per usable core: in_memory under taskset -c 0)",
    "multi_processing_1": "Beam, multi_processing, 1 worker",
    "multi_processing_2": "Beam, multi_processing, 2 workers",
    "in_memory_1": "Beam, in_memory, 1 worker",
    "plain_2_processes": "plain loop, 2 processes (every other file each)",
}
# (row key, cores given by taskset, what runs)
ONE_CORE_ROWS = [
    ("plain", "0", "plain"),
    ("curate_file", "0", "curate_file"),
    *((c, "0", c) for c in BEAM_CONFIGS),
]
TWO_CORE_ROWS = [
    ("plain_2_processes", "0,1", "plain_2_processes"),
    ("multi_processing_1@2", "0,1", "multi_processing_1"),
    ("multi_processing_2@2", "0,1", "multi_processing_2"),
]
ROWS = ONE_CORE_ROWS + TWO_CORE_ROWS


def _source_and_layout(inputs: list[str], output_root: str):
    from curation.layout import RunLayout
    from mixes.manifest import SourceConfig

    return SourceConfig(name=SOURCE, paths=inputs), RunLayout(output_root, str(Path(output_root) / "_cache"))


def curate_on_beam(inputs: list[str], output_root: str, beam_args: list[str]) -> int:
    """Phase one as `curation.pipeline.curate` runs it, for one filterless source; returns documents read."""
    import apache_beam as beam

    from curation.engine import pipeline_options, run_pipeline
    from curation.stages.curate import CurateFiles, pool_digest, read_pool_meta

    source, layout = _source_and_layout(inputs, output_root)
    todo = [(SOURCE, uri) for uri in inputs]
    run_pipeline(
        pipeline_options(beam_args),
        lambda p: (
            p | "ListInputs" >> beam.Create(todo) | "CurateFiles" >> CurateFiles({SOURCE: source}, layout)
        ),
    )
    return sum(read_pool_meta(layout, SOURCE, pool_digest(source, uri)).read for uri in inputs)


def curate_without_beam(inputs: list[str], output_root: str) -> int:
    """The same per-file work as the pipeline's DoFn, called in a loop: Beam's own cost is the difference."""
    from curation.chain import Chain
    from curation.stages.curate import curate_file

    source, layout = _source_and_layout(inputs, output_root)
    chain = Chain.from_specs([])
    return sum(curate_file(source, uri, chain, layout).read for uri in inputs)


def plain_over_files(fmt: str, inputs: list[str], out_dir: str) -> int:
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return sum(PLAIN_LOOPS[fmt](path, Path(out_dir) / f"{i}.jsonl.zst") for i, path in enumerate(inputs))


def _cpu_seconds() -> float:
    """User + system CPU of this process and every child it has reaped (Beam reaps its workers)."""
    usages = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usages)


def _timed(work) -> tuple[int, float, float]:
    wall, cpu = time.perf_counter(), _cpu_seconds()
    docs = work()
    return docs, time.perf_counter() - wall, _cpu_seconds() - cpu


def _child(task: list) -> dict:
    kind, fmt, tiny, inputs, out_dir = task
    startup_s = startup_cpu_s = 0.0
    if kind != "plain":
        # Imports are start-up, not throughput: the Beam rows pay them in their start-up run.
        import curation.stages.curate  # noqa: F401
    if kind in BEAM_CONFIGS:
        _, startup_s, startup_cpu_s = _timed(
            lambda: curate_on_beam([tiny], out_dir + "/startup", BEAM_CONFIGS[kind])
        )
        docs, seconds, cpu_s = _timed(lambda: curate_on_beam(inputs, out_dir + "/run", BEAM_CONFIGS[kind]))
    elif kind == "curate_file":
        docs, seconds, cpu_s = _timed(lambda: curate_without_beam(inputs, out_dir))
    else:
        docs, seconds, cpu_s = _timed(lambda: plain_over_files(fmt, inputs, out_dir))
    peak_kb = max(
        resource.getrusage(who).ru_maxrss for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return {
        "docs": docs,
        "seconds": seconds,
        "cpu_s": cpu_s,
        "startup_s": startup_s,
        "startup_cpu_s": startup_cpu_s,
        "peak_mb": peak_kb / 1024,
    }


def _spawn(cores: str, task: list) -> subprocess.Popen:
    cmd = ["taskset", "-c", cores, sys.executable, __file__, "--child", json.dumps(task)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def _collect(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"child failed ({proc.returncode}):\n{err[-4000:]}")
    return json.loads(out.strip().splitlines()[-1])


def _fresh(path: Path) -> str:
    shutil.rmtree(path, ignore_errors=True)
    return str(path)


def measure(what: str, cores: str, fmt: str, tiny: str, inputs: list[str], workdir: Path) -> dict:
    if what != "plain_2_processes":
        return _collect(_spawn(cores, [what, fmt, tiny, inputs, _fresh(workdir / what)]))
    # Each process takes every other file on its own core; they start together, so the pair takes the slower one's time.
    halves = [
        _collect(p)
        for p in [
            _spawn(str(k), ["plain", fmt, tiny, inputs[k::2], _fresh(workdir / f"plain{k}")])
            for k in range(2)
        ]
    ]
    return {
        "docs": sum(h["docs"] for h in halves),
        "seconds": max(h["seconds"] for h in halves),
        "cpu_s": sum(h["cpu_s"] for h in halves),
        "startup_s": 0.0,
        "startup_cpu_s": 0.0,
        "peak_mb": max(h["peak_mb"] for h in halves),
    }


def make_inputs(fmt: str, workdir: Path, files: int, docs: int, warc_copies: int) -> tuple[str, list[str]]:
    """`files` equal input files plus a one-document file of the same format for the start-up run."""
    folder = workdir / fmt
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".jsonl.zst" if fmt == "jsonl" else ".warc.gz"
    paths = [folder / f"part-{i:03d}{suffix}" for i in range(files)]
    for path in paths:
        if fmt == "jsonl":
            make_jsonl_zst_corpus(path, docs // files)
        else:
            make_warc_corpus(path, warc_copies)
    tiny = folder / f"tiny{suffix}"
    if fmt == "jsonl":
        make_jsonl_zst_corpus(tiny, 1)
    else:
        make_warc_corpus(tiny, 1)
    return str(tiny), [str(p) for p in paths]


def run_rounds(fmt: str, tiny: str, inputs: list[str], workdir: Path, runs: int) -> dict[str, list[dict]]:
    """Rounds interleave the rows, so a burst of load from other jobs lands on one run of each, not on one row."""
    samples: dict[str, list[dict]] = {key: [] for key, _, _ in ROWS}
    for round_ in range(runs):
        for key, cores, what in ROWS:
            load = os.getloadavg()[0]
            result = {**measure(what, cores, fmt, tiny, inputs, workdir), "load": load}
            samples[key].append(result)
            print(f"[{fmt} round {round_ + 1}] {key}: {result}", file=sys.stderr, flush=True)
    return samples


def summarize(results: list[dict]) -> dict:
    def median(field: str) -> float:
        return statistics.median(r[field] for r in results)

    docs = results[0]["docs"]
    seconds, startup = median("seconds"), median("startup_s")
    # Steady state: the full run minus one start-up (the full run spawns its own workers too).
    steady_cpu = statistics.median(r["cpu_s"] - r["startup_cpu_s"] for r in results)
    return {
        "docs": docs,
        "seconds": seconds,
        "startup_s": startup,
        "startup_cpu_s": median("startup_cpu_s"),
        "all_seconds": [round(r["seconds"], 1) for r in results],
        "with_startup_docs_per_s": docs / seconds,
        "steady_docs_per_s": docs / (seconds - startup) if seconds > startup else None,
        "steady_docs_per_cpu_s": docs / steady_cpu if steady_cpu > 0 else None,
        "cores_busy": median("cpu_s") / seconds,
        "peak_mb": max(r["peak_mb"] for r in results),
    }


def _rate(value: float | None) -> str:
    """A rate, or a dash when the run was no longer than its start-up (too small an input to tell)."""
    return "–" if value is None else f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    return "–" if value is None or base is None else f"{value / base:.2f}"


def render(measured: dict) -> str:
    """The BENCHMARKS.md section from the raw samples (saved beside the inputs, so it can be re-rendered)."""
    args = measured["args"]
    loads = [
        r["load"] for section in measured["sections"] for runs in section["samples"].values() for r in runs
    ]
    lines = [
        HEADING,
        "",
        (
            f"Date 2026-11-22; machine: 2 cores, {_cpu_model()}, shared with other engineers' jobs (1-minute load "
            f"average {min(loads):.1f} to {max(loads):.1f} during the runs, so wall-clock figures are noisy): "
            f"medians of {args['runs']} interleaved runs, each a fresh process, with every run's seconds listed. Phase "
            "one is `CurateFiles` (read, score with an empty filter chain, write the content-addressed pool as "
            "JSONL.zst, level 1) built as `curation.pipeline.curate` builds it; the plain loops are "
            "`bench_read_write.plain_loop` / `plain_warc_loop` over the same files. *Start-up*: the same pipeline on a "
            "one-document file (spawn, run and tear down the workers). *Cores busy*: CPU seconds of the process tree "
            "over wall seconds, below the cores given when other jobs took the CPU. *docs/s with start-up*: documents "
            "/ wall seconds of the full run; *steady*: after taking one start-up off; *docs per CPU-second*: documents "
            "/ CPU seconds of the whole process tree (Beam workers included) minus the start-up's, the per-core rate "
            "least disturbed by other jobs. Reproduce: "
            f"`python bench/bench_pipeline.py --docs {args['docs']} --files {args['files']} "
            f"--warc-copies {args['warc_copies']} --runs {args['runs']}`."
        ),
        "",
    ]
    for section in measured["sections"]:
        summary = {key: summarize(runs) for key, runs in section["samples"].items()}
        plain = summary["plain"]
        lines += [
            f"### {section['title']}",
            "",
            (
                "| implementation | cores | start-up s (CPU s) | run s (each run) | cores busy | docs/s with start-up "
                "| docs/s steady | docs per CPU-second | vs plain loop: with start-up / steady / per CPU-second "
                "| peak RSS MB |"
            ),
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for key, cores, _ in ROWS:
            r = summary[key]
            ratios = " / ".join(
                _ratio(r[field], plain[field])
                for field in ("with_startup_docs_per_s", "steady_docs_per_s", "steady_docs_per_cpu_s")
            )
            lines.append(
                f"| {LABELS[key.split('@')[0]]} | {len(cores.split(','))} | "
                f"{r['startup_s']:.1f} ({r['startup_cpu_s']:.1f}) | "
                f"{r['seconds']:.1f} ({', '.join(map(str, r['all_seconds']))}) | {r['cores_busy']:.2f} | "
                f"{r['with_startup_docs_per_s']:,.0f} | {_rate(r['steady_docs_per_s'])} | "
                f"{_rate(r['steady_docs_per_cpu_s'])} | {ratios} | {r['peak_mb']:.0f} |"
            )
        one, two = summary["multi_processing_1@2"], summary["multi_processing_2@2"]
        lines += [
            "",
            (
                "2 vs 1 Beam workers on 2 cores: "
                f"{_ratio(two['with_startup_docs_per_s'], one['with_startup_docs_per_s'])}x with start-up, "
                f"{_ratio(two['steady_docs_per_s'], one['steady_docs_per_s'])}x steady; plain loop as 2 processes "
                f"vs 1: {_ratio(summary['plain_2_processes']['steady_docs_per_s'], plain['steady_docs_per_s'])}x."
            ),
            "",
        ]
    return "\n".join(lines)


def write_section(section: str) -> None:
    benchmarks_md.write_section(HEADING, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200_000, help="JSONL.zst documents over all files")
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument(
        "--warc-copies", type=int, default=4, help="copies of the WARC samples in each WARC file"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--formats", default="jsonl,warc")
    parser.add_argument("--workdir", default="/tmp/bench-pipeline")
    parser.add_argument(
        "--no-write", action="store_true", help="print the section, leave BENCHMARKS.md alone"
    )
    parser.add_argument(
        "--render", metavar="SAMPLES_JSON", help="re-render saved samples instead of measuring"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    if args.render:
        measured = json.loads(Path(args.render).read_text())
    else:
        measured = measure_all(args)
    section = render(measured)
    if not args.no_write:
        write_section(section)
    print(section)


def measure_all(args) -> dict:
    workdir = Path(args.workdir)
    measured = {
        "args": {k: getattr(args, k) for k in ("docs", "files", "warc_copies", "runs")},
        "sections": [],
    }
    for fmt in args.formats.split(","):
        tiny, inputs = make_inputs(fmt, workdir, args.files, args.docs, args.warc_copies)
        megabytes = sum(Path(p).stat().st_size for p in inputs) / 1e6
        samples = run_rounds(fmt, tiny, inputs, workdir / "out", args.runs)
        kind = "JSONL.zst" if fmt == "jsonl" else "WARC.gz (HTML responses to text)"
        docs = samples["plain"][0]["docs"]
        title = f"{kind}: {len(inputs)} files, {docs:,} documents, {megabytes:.0f} MB"
        measured["sections"].append({"title": title, "samples": samples})
        (workdir / "samples.json").write_text(json.dumps(measured, indent=1))
    return measured


if __name__ == "__main__":
    main()
