"""Scale-out: one manifest run three ways, side by side in one session, and the launcher's and workers' peak
memory as the corpus grows.

1. `local`: output on local disk, the default runner (local worker processes).
2. `s3`: every path on S3 (moto on loopback, in its own process), the default runner.
3. `isolated`: every path on S3, 2 workers from a Beam worker pool in a private mount namespace that hides
   the checkout's data (`--environment_type=EXTERNAL`), as tests/test_isolated_workers.py runs it.
4. `jobserver`: every path on S3, `--runner=PortableRunner` with Beam's job service in a process of its own
   (`local_job_service_main`, standing in for a cluster's job server) and a worker pool on the shared disk:
   where the runner, and the data it passes between stages, live outside the launcher.
5. `portable`: as `jobserver` with every path on local disk, for corpora too large for an in-memory S3.

For each: wall time, the 1-minute load average at its start and end, CPU seconds of the launcher's, the worker pool's and the job server's process trees,
the launcher's own peak RSS and its peak RSS while each phase ran (from the phase of its last log line),
the job server's peak RSS, the largest peak RSS of any worker process, and S3 requests by method (from the
S3 server's request log). Process trees are sampled from /proc every 0.1 s (CPU: the last sample of each process;
peak RSS: the kernel's VmHWM). With `--copies` the corpus is the demo's web, code, math and wiki files repeated
that many times with distinct ids and a copy number in each text, so dedupe keeps the copies, run through
tests/test_isolated_workers.py's manifest. With `--docs` it is that many paragraph-sized documents of real
text (bench/paragraph_corpus.py, written once under `--corpus-dir`) run through bench/million.yaml. A run
whose process trees pass `--max-gb` of resident memory together is stopped and reported with the phase it
reached, so a size that does not fit the machine cannot take it down. By hand (as root for `isolated`):

    python bench/bench_scale_out.py [--copies 1 8 30] [--modes local s3 isolated jobserver] [--workdir /tmp/bench-scale-out]
    python bench/bench_scale_out.py --docs 10000 100000 1000000 --modes local portable --corpus-dir /work/tmp-million
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import orjson
import yaml
import zstandard

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

from paragraph_corpus import write_paragraph_corpus  # noqa: E402
from test_isolated_workers import HIDDEN_FROM_WORKERS, WorkerPool, s3_manifest  # noqa: E402

DEMO = REPO / "data" / "demo"
SOURCES = ("web", "code", "math", "wiki")
MILLION = REPO / "bench" / "million.yaml"
S3_MODES = ("s3", "isolated", "jobserver")
POOL_MODES = ("isolated", "jobserver", "portable")
_TICKS = os.sysconf("SC_CLK_TCK")
_REQUEST = re.compile(r'"(GET|PUT|POST|HEAD|DELETE) ')
_PHASE = re.compile(r"^\[(\w+)\]")


class TreeMonitor:
    """CPU seconds and peak RSS of every process in the trees under `roots`, sampled from /proc, and the
    peak RSS of `roots[0]` while each phase ran (`phase()` names the current one). Once the trees' resident
    memory together passes `max_kb`, `over()` is called once and `stopped_in` names the phase then running."""

    def __init__(self, roots: list[int], phase, max_kb: int | None = None, over=None):
        self.roots = roots
        self.phase = phase
        self.max_kb = max_kb
        self.over = over
        self.stopped_in: str | None = None
        self.cpu: dict[int, float] = {}
        self.peak_kb: dict[int, int] = {}
        self.phase_peak_kb: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _tree(self) -> list[int]:
        found, todo = [], list(self.roots)
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    todo.extend(int(c) for c in task.read_text().split())
                except OSError:
                    pass
        return found

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            total_kb = 0
            for pid in self._tree():
                try:
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                self.cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICKS
                hwm = re.search(r"VmHWM:\s+(\d+)", status)
                if hwm:
                    self.peak_kb[pid] = max(self.peak_kb.get(pid, 0), int(hwm.group(1)))
                rss = re.search(r"VmRSS:\s+(\d+)", status)
                total_kb += int(rss.group(1)) if rss else 0
                if pid == self.roots[0] and rss:
                    phase = self.phase()
                    self.phase_peak_kb[phase] = max(self.phase_peak_kb.get(phase, 0), int(rss.group(1)))
            if self.max_kb and total_kb > self.max_kb and self.stopped_in is None:
                self.stopped_in = self.phase()
                self.over()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def make_corpus(folder: Path, copies: int) -> int:
    """The demo sources, each document repeated `copies` times with a distinct id and text."""
    count = 0
    for source in SOURCES:
        for path in sorted((DEMO / source).iterdir()):
            opener = gzip.open if path.suffix == ".gz" else (lambda p: zstandard.open(p, "rb"))
            with opener(path) as f:
                docs = [orjson.loads(line) for line in io.TextIOWrapper(f, encoding="utf-8") if line.strip()]
            out = folder / "data" / source / (path.name.split(".")[0] + ".jsonl.gz")
            out.parent.mkdir(parents=True, exist_ok=True)
            with gzip.open(out, "wb", compresslevel=1) as f:
                for copy in range(copies):
                    for i, doc in enumerate(docs):
                        doc = dict(doc, id=f"{doc.get('id', i)}-c{copy}", text=f"{doc.get('text', '')}\n\nCopy {copy} of this text.")
                        if "url" in doc:
                            doc["url"] = f"{doc['url']}#c{copy}"
                        f.write(orjson.dumps(doc) + b"\n")
                        count += 1
    # The layout s3_manifest expects under its root, locally or uploaded as is.
    (folder / "evals").mkdir()
    shutil.copy(DEMO / "evals" / "gsm8k-test.jsonl", folder / "evals")
    (folder / "tokenizers").mkdir()
    shutil.copy(REPO / "tokenizers" / "allenai_dolma2.json", folder / "tokenizers")
    return count


def start_s3(workdir: Path) -> tuple[subprocess.Popen, str, Path]:
    port = _free_port()
    log = workdir / "s3.log"
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    time.sleep(3)
    return server, f"http://127.0.0.1:{port}", log


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def s3_requests(log: Path, since: int) -> tuple[Counter, int]:
    lines = log.read_text(errors="replace").splitlines()
    counts = Counter(m.group(1) for line in lines[since:] if (m := _REQUEST.search(line)))
    return counts, len(lines)


def upload(folder: Path, uri: str) -> None:
    from curation import storage

    for path in sorted(folder.rglob("*")):
        if path.is_file():
            storage.upload_file(str(path), storage.join(uri, path.relative_to(folder).as_posix()))


class JobServer:
    """Beam's local job service in a process of its own, as a cluster's job server runs apart from the
    launcher: the FnApiRunner it runs the jobs on then holds the data between stages, not the launcher."""

    def __init__(self, env: dict, log: Path):
        self.port = _free_port()
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apache_beam.runners.portability.local_job_service_main", f"--port={self.port}"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        time.sleep(5)

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        self.process.wait(30)
        self._log.close()


def run_once(mode: str, manifest: Path, env: dict, extra: list[str], pool: WorkerPool | None, server: JobServer | None, max_gb: float) -> dict:
    started, load_before = time.monotonic(), os.getloadavg()[0]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "curation.cli", "run", str(manifest), *extra],
        cwd=manifest.parent,
        env=dict(env, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    phase = ["start"]
    others = [p.process.pid for p in (pool, server) if p]
    monitor = TreeMonitor([launcher.pid, *others], lambda: phase[0], int(max_gb * 1024 * 1024), lambda: os.killpg(launcher.pid, 9))
    printed: list[str] = []
    summary = threading.Thread(target=lambda: printed.append(launcher.stdout.read()), daemon=True)
    summary.start()
    # The run logs each phase's lines, "[curate] ...", on stderr.
    log = []
    for line in launcher.stderr:
        log.append(line)
        if found := _PHASE.match(line):
            phase[0] = found.group(1)
    launcher.wait()
    summary.join()
    wall = time.monotonic() - started
    monitor.stop()
    if launcher.returncode != 0 and monitor.stopped_in is None:
        raise SystemExit(f"{mode} run failed:\n{''.join(log)[-3000:]}")
    worker_pids = [p for p in monitor.cpu if p != launcher.pid and p not in others]
    return {
        "wall_s": round(wall, 1),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "cpu_s": round(sum(monitor.cpu.values()), 1),
        "launcher_peak_mb": round(monitor.peak_kb.get(launcher.pid, 0) / 1024),
        "launcher_phase_peak_mb": {name: round(kb / 1024) for name, kb in monitor.phase_peak_kb.items()},
        "job_server_peak_mb": round(monitor.peak_kb.get(server.process.pid, 0) / 1024) if server else None,
        "worker_peak_mb": round(max((monitor.peak_kb.get(p, 0) for p in worker_pids), default=0) / 1024),
        "stopped_over_max_gb_in": monitor.stopped_in,
        "summary": "".join(printed).strip().splitlines()[:1],
    }


def _absolute(value, base: Path):
    """The manifest with every path relative to `base` (a string starting with ../) made absolute."""
    if isinstance(value, dict):
        return {k: _absolute(v, base) for k, v in value.items()}
    if isinstance(value, list):
        return [_absolute(v, base) for v in value]
    return str((base / value).resolve()) if isinstance(value, str) and value.startswith("../") else value


def million_manifest(corpus: Path, output: str, documents: int) -> dict:
    body = _absolute(yaml.safe_load(MILLION.read_text()), MILLION.parent)
    for source in body["sources"]:
        source["paths"] = [f"{corpus}/{source['name']}/*.jsonl.gz"]
    body["output"]["path"] = output
    body["mix"]["target_tokens"] = 40 * documents
    return body


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = parser.add_mutually_exclusive_group()
    sizes.add_argument("--copies", type=int, nargs="+", default=[1, 8])
    sizes.add_argument("--docs", type=int, nargs="+")
    parser.add_argument("--modes", nargs="+", default=["local", "s3", "isolated", "jobserver"])
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale-out")
    parser.add_argument("--corpus-dir", type=Path, default=Path(tempfile.gettempdir()) / "bench-scale-out-corpora")
    parser.add_argument("--max-gb", type=float, default=12.0)
    args = parser.parse_args()
    shutil.rmtree(args.workdir, ignore_errors=True)
    args.workdir.mkdir(parents=True)
    env = dict(os.environ)
    server = endpoint = None
    if set(args.modes) & set(S3_MODES):
        os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        server, endpoint, s3_log = start_s3(args.workdir)
        os.environ["CURATION_S3_ENDPOINT_URL"] = endpoint
        env = dict(os.environ)
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
    results = []
    try:
        for size in args.docs or args.copies:
            if args.docs:
                corpus = args.corpus_dir / f"docs-{size}"
                documents = write_paragraph_corpus(corpus, size)
            else:
                corpus = args.workdir / f"corpus-{size}"
                documents = make_corpus(corpus, size)
            inputs = f"s3://bench/inputs-{size}"
            if server:
                upload(corpus, inputs)
            for mode in args.modes:
                launcher_dir = args.workdir / f"launcher-{size}-{mode}"
                launcher_dir.mkdir()
                if mode in S3_MODES:
                    root, output = inputs, f"s3://bench/out-{size}-{mode}"
                else:
                    root, output = str(corpus), str(launcher_dir / "out")
                if args.docs:
                    body = million_manifest(root, output, size)
                else:
                    body = s3_manifest(root, output)
                    body["sources"] = [dict(s, paths=[f"{root}/data/{s['name']}/*.jsonl.gz"]) for s in body["sources"]]
                manifest = launcher_dir / "bench.yaml"
                manifest.write_text(yaml.safe_dump(body, sort_keys=False))
                extra = ["--direct_num_workers=2"] + ([f"--s3_endpoint_url={endpoint}"] if mode in S3_MODES else [])
                pool = job_server = None
                if mode in POOL_MODES:
                    scratch = args.workdir / f"scratch-{size}-{mode}"
                    scratch.mkdir()
                    hidden = [REPO / n for n in HIDDEN_FROM_WORKERS if (REPO / n).is_dir()] + [launcher_dir, corpus]
                    pool = WorkerPool(hidden if mode == "isolated" else [], scratch, env, args.workdir / f"pool-{size}-{mode}.log")
                    extra += ["--environment_type=EXTERNAL", f"--environment_config=localhost:{pool.port}"]
                if mode in ("jobserver", "portable"):
                    job_server = JobServer(env, args.workdir / f"jobserver-{size}-{mode}.log")
                    # Beam 2.77 takes --job_server_timeout (300 s by default) as the deadline of the job's
                    # state stream: a longer phase would fail with DEADLINE_EXCEEDED.
                    extra += ["--runner=PortableRunner", f"--job_endpoint=localhost:{job_server.port}", "--job_server_timeout=86400"]
                seen = s3_requests(s3_log, 0)[1] if server else 0
                try:
                    row = run_once(mode, manifest, env, extra, pool, job_server, args.max_gb)
                finally:
                    for process in (pool, job_server):
                        if process:
                            process.stop()
                row.update(mode=mode, documents=documents)
                if mode in S3_MODES:
                    counts, _ = s3_requests(s3_log, seen)
                    row.update(s3_requests=dict(counts), s3_per_1000_docs=round(sum(counts.values()) * 1000 / documents, 1))
                print(json.dumps(row), flush=True)
                results.append(row)
    finally:
        if server:
            server.terminate()
    (args.workdir / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
