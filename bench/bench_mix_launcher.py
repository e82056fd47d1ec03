"""What the mix phase costs its launcher: the job graph's bytes (what a runner receives) and the launcher
process's peak RSS while it plans and writes the shards, on a real four-source mix from data/demo repeated up
to `--target-tokens` (50x repetition allowed, so copies grow with the target).

Run from the repository root:  python bench/bench_mix_launcher.py /tmp/mix-bench --target-tokens 30000000
The first call runs the whole manifest; each call then rewrites the shards alone, timed and measured here.
Prints a Markdown row for BENCHMARKS.md ("## Mix: the launcher").
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
from pathlib import Path

import apache_beam as beam

from curation.pipeline import curate, decide, prepare, run, tokenize
from curation.stages import mix
from mixes.manifest import load_manifest

sys.path.append(str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import write_manifest  # noqa: E402
from helpers_mix import four_source_mix  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("folder", type=Path)
    parser.add_argument("--target-tokens", type=int, default=30_000_000)
    args = parser.parse_args()
    args.folder.mkdir(parents=True, exist_ok=True)
    body = four_source_mix("mix-bench", args.target_tokens, shard_tokens=1_000_000, max_repetition=50)
    loaded = load_manifest(write_manifest(args.folder, body))
    beam_args = ["--direct_num_workers=2"]
    if not (args.folder / "out" / "mix-bench" / "1.0.0" / "lock.json").exists():
        run(loaded, beam_args, log=lambda _: None)
    ctx = prepare(loaded, beam_args, log=lambda _: None)
    pools = curate(ctx)
    token_files = tokenize(ctx, pools, *decide(ctx, pools))
    shutil.rmtree(ctx.layout.shards_dir)
    graph_bytes = []
    run_pipeline = mix.run_pipeline

    def measured(options, build, **kwargs):
        pipeline = beam.Pipeline(options=options)
        build(pipeline)
        graph_bytes.append(len(pipeline.to_runner_api().SerializeToString()))
        return run_pipeline(options, build, **kwargs)

    mix.run_pipeline = measured
    before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = mix.mix_and_write(ctx, token_files)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    copies = sum(s["documents"] for s in result.shards)
    print(f"| {copies:,} | {len(result.shards)} | {graph_bytes[0]:,} | {before_mb:,.0f} | {peak_mb:,.0f} |")


if __name__ == "__main__":
    main()
