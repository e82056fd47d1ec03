"""The launcher's memory at the end of a run (ledger, stats.json, published documents, audit index, card,
checksums, lock: `curation.report.finish_run`) against corpus size (issue #12 item 2).

A corpus of N real arXiv abstracts repeated under distinct ids (tests/helpers_scale.py: half exact
duplicates, dropped into the ledger; half kept) goes through every phase with `--direct_num_workers=2`
(Beam's workers are other processes), each size in a fresh process so its peak RSS is its own. Reported:
the peak of the launcher's traced Python allocations during finish_run, and the launcher's peak RSS before
finish_run and after it. `--code DIR` runs another checkout (e.g. main, to compare) on the same corpora,
reusing their cached phases. By hand:

    python bench/bench_launcher.py [--docs 10000 100000] [--workdir /tmp/bench-launcher] [--code /work/main]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def child(workdir: Path, documents: int) -> None:
    from helpers_scale import end_of_run_memory, write_scale_manifest

    folder = workdir / str(documents)
    manifest = folder / "manifest.yaml"
    if not manifest.exists():
        write_scale_manifest(folder, documents)
    # Only the products go: the cached phases are shared by every checkout measured.
    shutil.rmtree(folder / "out" / "scale", ignore_errors=True)
    started = time.time()
    result = end_of_run_memory(manifest, ["--direct_num_workers=2"])
    result["seconds"] = round(time.time() - started, 1)
    print(json.dumps(result))


def measure(code: Path, workdir: Path, documents: int) -> dict:
    env = dict(os.environ, PYTHONPATH=f"{code}:{REPO / 'tests'}")
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(documents), "--workdir", str(workdir)],
        env=env, capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-launcher"))
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--child", type=int)
    args = parser.parse_args()
    if args.child:
        return child(args.workdir, args.child)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("| code | documents | rejected | kept | traced peak in finish_run | launcher RSS peak before | after |")
    print("|---|---|---|---|---|---|---|")
    for code in [REPO, *args.code]:
        for documents in args.docs:
            r = measure(code, args.workdir, documents)
            print(
                f"| {code.name} | {r['documents']:,} | {r['rejected']:,} | {r['kept']:,} | {_mb(r['traced_peak_bytes'])} "
                f"| {_mb(r['rss_peak_before_bytes'])} | {_mb(r['rss_peak_after_bytes'])} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
