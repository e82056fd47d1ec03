"""Decide with its scratch (dedupe's sketches and runs, the groupings through run files) on local disk and on
S3 (moto in server mode on loopback, in its own process): wall time, CPU seconds (this process and its worker
processes; the S3 server's apart) and S3 requests per 1,000 documents by operation, summed over every worker
by the Beam metric that storage.py counts requests in.

The corpus is tests/test_decide_under_load.py's: 4,000 IMDB reviews in 4 files, BBC news, GitHub code and the
decontamination fixtures from ../shared (about 9,200 documents), with exact, MinHash and paragraph dedupe and
decontamination. Pools are curated once, locally; only decide runs twice. By hand:

    python bench/bench_decide_scratch.py [--workdir /tmp/bench-decide-scratch] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from helpers_dedupe import decide_with_scratch  # noqa: E402
from test_decide_under_load import build_corpus  # noqa: E402

from curation import storage  # noqa: E402
from curation.pipeline import curate, prepare  # noqa: E402
from mixes.manifest import load_manifest  # noqa: E402


def cpu_seconds(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed_decide(ctx, pools, work_dir: str, args: list[str]) -> tuple[dict, Counter, float, float]:
    wall, cpu = time.monotonic(), cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN)
    files, requests = decide_with_scratch(ctx, pools, work_dir, args)
    cpu = cpu_seconds(resource.RUSAGE_SELF) + cpu_seconds(resource.RUSAGE_CHILDREN) - cpu
    by_operation: Counter = Counter()
    for (_, operation), count in requests.items():
        by_operation[operation] += count
    return files, by_operation, time.monotonic() - wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/bench-decide-scratch"))
    parser.add_argument("--workers", type=int, default=2)
    opts = parser.parse_args()
    shutil.rmtree(opts.workdir, ignore_errors=True)
    opts.workdir.mkdir(parents=True)
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        storage.configure_s3(endpoint_url=endpoint)
        storage._s3().create_bucket(Bucket="scratch")
        ctx = prepare(
            load_manifest(build_corpus(REPO.parent / "shared", opts.workdir)), [], log=lambda _: None
        )
        pools = curate(ctx)
        documents = sum(pool.read - pool.quarantined for pool in pools)
        args = [f"--direct_num_workers={opts.workers}", "--s3_endpoint_url", endpoint]
        print(
            f"{documents:,} documents in {len(pools)} pools; {opts.workers} workers;"
            f" load {os.getloadavg()[0]:.1f}"
        )
        print("| scratch | wall s | CPU s | S3 server CPU s | S3 requests per 1,000 documents |")
        print("|---|---|---|---|---|")
        local, _, wall, cpu = timed_decide(ctx, pools, str(opts.workdir / "work"), args)
        print(f"| local disk | {wall:.1f} | {cpu:.1f} | - | 0 |")
        server_cpu = process_cpu(server.pid)
        on_s3, requests, wall, cpu = timed_decide(ctx, pools, "s3://scratch/work", args)
        server_cpu = process_cpu(server.pid) - server_cpu
        per_1000 = ", ".join(f"{op} {n * 1000 / documents:.1f}" for op, n in sorted(requests.items()))
        total = sum(requests.values()) * 1000 / documents
        print(f"| S3 (moto) | {wall:.1f} | {cpu:.1f} | {server_cpu:.1f} | {total:.1f} ({per_1000}) |")
        print("decisions identical:", on_s3 == local)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
