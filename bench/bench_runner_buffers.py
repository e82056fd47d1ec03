"""What the local runner holds between a run's stages: the bytes Beam's FnApiRunner (which runs in the
launcher) buffers per PCollection, for bench/bench_scale_out.py's corpus and manifest on local disk.

A PCollection that crosses a stage boundary (a GroupByKey, a Flatten of several inputs, the main input of a
step that waits for a side input) is written to one of the runner's buffers and stays there until the
pipeline ends, so the buffers' total is the launcher's growth in corpus size. `curation run` runs in this
process with `FnApiRunner`'s `get_buffer` wrapped to count the bytes each buffer receives, by pipeline (named
by its top-level transforms). By hand:

    python bench/bench_runner_buffers.py [--copies 1 8] [--workdir /tmp/bench-runner-buffers] [--top 12]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
from collections import Counter
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from apache_beam.runners.portability.fn_api_runner import execution  # noqa: E402
from bench_scale_out import make_corpus  # noqa: E402
from test_isolated_workers import s3_manifest  # noqa: E402

from curation import cli  # noqa: E402

# (pipeline, buffer id) -> bytes written to it.
BUFFERED: Counter = Counter()


def _pipeline_name(components) -> str:
    composites = {t.unique_name.split("/")[0] for t in components.transforms.values() if "/" in t.unique_name}
    return "+".join(sorted(composites))[:40]


def count_buffered_bytes() -> None:
    """Every buffer the runner hands out counts the bytes written to it, under its pipeline and buffer id."""
    get_buffer = execution.BundleContextManager.get_buffer

    def counted(self, buffer_id: bytes, transform_id: str):
        buffer = get_buffer(self, buffer_id, transform_id)
        if not hasattr(buffer, "counted_as"):
            buffer.counted_as = (_pipeline_name(self.execution_context.pipeline_components), buffer_id.decode(errors="replace"))
            append = buffer.append

            def append_counted(data: bytes, name=buffer.counted_as) -> None:
                BUFFERED[name] += len(data)
                append(data)

            buffer.append = append_counted
        return buffer

    execution.BundleContextManager.get_buffer = counted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-runner-buffers"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top", type=int, default=12)
    opts = parser.parse_args()
    count_buffered_bytes()
    for copies in opts.copies:
        folder = opts.workdir / f"copies-{copies}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        documents = make_corpus(folder, copies)
        body = s3_manifest(str(folder), str(folder / "out"))
        body["sources"] = [dict(s, paths=[f"{folder}/data/{s['name']}/*.jsonl.gz"]) for s in body["sources"]]
        manifest = folder / "bench.yaml"
        manifest.write_text(yaml.safe_dump(body, sort_keys=False))
        BUFFERED.clear()
        if cli.main(["run", str(manifest), f"--direct_num_workers={opts.workers}"]) not in (0, None):
            raise SystemExit(f"the run of {manifest} failed")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        by_pipeline: Counter = Counter()
        for (pipeline, _), size in BUFFERED.items():
            by_pipeline[pipeline] += size
        total = sum(BUFFERED.values())
        print(f"{documents:,} documents: runner buffers {total / 2**20:.1f} MB ({total / documents:,.0f} B per document);"
              f" this process's peak RSS {peak:.0f} MB")
        print("| pipeline | buffer | MB | B per document |\n|---|---|---:|---:|")
        for pipeline, size in by_pipeline.most_common():
            print(f"| {pipeline} | (all) | {size / 2**20:.2f} | {size / documents:,.0f} |")
        for (pipeline, name), size in BUFFERED.most_common(opts.top):
            print(f"| {pipeline} | `{name}` | {size / 2**20:.2f} | {size / documents:,.0f} |")


if __name__ == "__main__":
    main()
