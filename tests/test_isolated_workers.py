"""Scale-out as a cluster runs it: Beam worker pools (`worker_pool_main`) in private mount namespaces, where
the checkout's data, tokenizer, manifests and output folders and the launcher's folders are empty tmpfs, so
the workers share nothing with the launcher but a loopback S3 server (moto). A run with every path on S3
must give the same locked outputs as the local FnApiRunner, leave its whole release on S3, and write nothing
on the launcher's or the workers' disks outside their scratch."""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml
from conftest import DEMO_DATA, REPO, TOKENIZER

from curation import storage
from curation.layout import RunLayout

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="private mount namespaces are Linux's")

# What the workers must not see: everything of the checkout but its code.
HIDDEN_FROM_WORKERS = ("data", "tokenizers", "manifests", "out")
BUCKET = "isolated-run"


def _unshare_refusal() -> str | None:
    if shutil.which("unshare") is None or shutil.which("nsenter") is None:
        return "unshare/nsenter (util-linux) are not installed"
    probe = subprocess.run(
        ["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return f"private mount namespaces are not permitted here ({probe.stderr.strip() or probe.returncode})"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the worker pool exited: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"the worker pool never listened on port {port}")


class WorkerPool:
    """One `worker_pool_main`, which starts an SDK worker process per worker the runner asks for. With
    folders to hide it runs in a mount namespace of its own, where they and its TMPDIR (the one folder it
    may write to) are empty tmpfs."""

    def __init__(self, hidden: list[Path], scratch: Path, env: dict[str, str], log: Path):
        self.port = _free_port()
        self.hidden = hidden
        self.scratch = scratch
        # The pool starts workers with `python` from PATH: make that this interpreter. A script, not a symlink:
        # Python finds its virtual environment beside the path it was started by, so a symlink elsewhere to a
        # venv's python starts the base interpreter, with other packages (or none).
        bin_dir = Path(tempfile.mkdtemp(prefix="pool-bin-", dir=scratch.parent))
        (bin_dir / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
        (bin_dir / "python").chmod(0o755)
        pool_main = [sys.executable, "-m", "apache_beam.runners.worker.worker_pool_main", f"--service_port={self.port}"]
        if hidden:
            mounts = " && ".join(f"mount -t tmpfs tmpfs '{p}'" for p in [*hidden, scratch])
            pool_main = ["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && exec {' '.join(pool_main)}"]
        pool_env = {**env, "TMPDIR": str(scratch), "PATH": f"{bin_dir}:{env['PATH']}"}
        self.log = log
        self._log_file = log.open("wb")
        self.process = subprocess.Popen(
            pool_main,
            env=pool_env,
            cwd=scratch.parent,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        _wait_for_port(self.port, self.process, log)

    def files_outside_scratch(self) -> list[str]:
        """Everything the workers left in the folders hidden from them, as the pool's namespace sees it."""
        listing = subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "find", *map(str, self.hidden), "-mindepth", "1"],
            capture_output=True,
            text=True,
            check=True,
        )
        return listing.stdout.split()

    def sees_the_checkouts_data(self) -> bool:
        found = subprocess.run(
            ["nsenter", "-t", str(self.process.pid), "-m", "ls", "-A", str(REPO / "data")],
            capture_output=True,
            text=True,
            check=True,
        )
        return bool(found.stdout.strip())

    def stop(self) -> None:
        os.killpg(self.process.pid, 15)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, 9)
            self.process.wait()
        self._log_file.close()


@pytest.fixture(scope="module")
def unshare_permitted() -> None:
    refusal = _unshare_refusal()
    if refusal:
        pytest.skip(refusal)


@pytest.fixture
def worker_env(s3_endpoint) -> dict[str, str]:
    """What a cluster's workers are configured with: credentials and the endpoint, in their environment."""
    return {**os.environ, "CURATION_S3_ENDPOINT_URL": s3_endpoint}


@pytest.fixture
def pool(tmp_path, worker_env, unshare_permitted) -> Iterator[WorkerPool]:
    scratch = tmp_path / "worker-scratch"
    scratch.mkdir()
    launcher_dir = tmp_path / "launcher"
    launcher_dir.mkdir()
    hidden = [REPO / name for name in HIDDEN_FROM_WORKERS if (REPO / name).is_dir()] + [launcher_dir]
    pool = WorkerPool(hidden, scratch, worker_env, tmp_path / "pool.log")
    try:
        yield pool
    finally:
        pool.stop()


def _upload_tree(local: Path, uri: str) -> None:
    for path in sorted(local.rglob("*")):
        if path.is_file():
            storage.upload_file(str(path), storage.join(uri, path.relative_to(local).as_posix()))


def s3_manifest(root: str, output: str) -> dict:
    """A small real multi-source blend of the demo corpus with every path on S3: quality filters, exact,
    URL and MinHash dedupe, decontamination with span removal, a token budget per source."""
    web_filters = [
        {"use": "language_v1", "languages": ["en"], "min_score": 0.65, "gate": True},
        {"use": "gopher_repetition_v1"},
        {"use": "gopher_quality_v1"},
        {"use": "c4_line_removal_v1"},
        {"use": "c4_quality_v1"},
    ]
    return {
        "name": "isolated",
        "version": "1.0.0",
        "seed": 20241122,
        "sources": [
            {"name": "web", "paths": [f"{root}/data/web/*.json*.gz"], "on_error": "quarantine", "filters": web_filters},
            {"name": "code", "paths": [f"{root}/data/code/*-00.jsonl.zst"], "metadata_fields": ["repo", "path", "language", "license"]},
            {"name": "math", "paths": [f"{root}/data/math/latex-*"]},
            {"name": "wiki", "paths": [f"{root}/data/wiki/*.jsonl.gz"]},
        ],
        "dedupe": {
            "priority": ["wiki", "math", "code", "web"],
            "exact": {"scope": "global"},
            "url": {"scope": "global"},
            "minhash": {"scope": "per_source"},
        },
        "decontaminate": {
            "evals": [{"name": "gsm8k", "paths": [f"{root}/evals/gsm8k-test.jsonl"], "text_fields": ["question", "answer"]}],
            "action": "remove_span",
        },
        "mix": {
            "target_tokens": 200_000,
            "sources": {
                "web": {"ratio": 0.4, "max_repetition": 3},
                "code": {"ratio": 0.2},
                "math": {"ratio": 0.3},
                "wiki": {"ratio": 0.1},
            },
        },
        "output": {"path": output, "tokenizer": f"{root}/tokenizers/allenai_dolma2.json", "eos": "append", "shard_tokens": 60_000},
    }


def _curation(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "curation.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _all_objects(prefix: str, endpoint: str) -> list[str]:
    import boto3

    bucket, key = storage.split_s3(prefix)
    pages = boto3.client("s3", endpoint_url=endpoint).get_paginator("list_objects_v2")
    return [f"s3://{bucket}/{o['Key']}" for page in pages.paginate(Bucket=bucket, Prefix=key + "/") for o in page.get("Contents", ())]


def _locked_outputs(root: str) -> dict[str, str]:
    with storage.open_binary(storage.join(root, "lock.json")) as f:
        lock = orjson.loads(f.read())
    return {entry["uri"]: entry["sha256"] for entry in lock["outputs"]}


def test_a_run_on_isolated_workers_sharing_only_s3_equals_the_local_run(tmp_path, s3_endpoint, worker_env, pool):
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket=BUCKET)
    inputs = f"s3://{BUCKET}/inputs"
    for name in ("web", "code", "math", "wiki"):
        _upload_tree(DEMO_DATA / name, f"{inputs}/data/{name}")  # each source's glob picks its files
    storage.upload_file(str(DEMO_DATA / "evals" / "gsm8k-test.jsonl"), f"{inputs}/evals/gsm8k-test.jsonl")
    storage.upload_file(str(TOKENIZER), f"{inputs}/tokenizers/allenai_dolma2.json")
    output = f"s3://{BUCKET}/out"
    manifest = tmp_path / "launcher" / "isolated.yaml"
    manifest.write_text(yaml.safe_dump(s3_manifest(inputs, output), sort_keys=False))
    root = RunLayout.for_manifest(output, "isolated", "1.0.0").root
    launcher = tmp_path / "launcher"

    # The reference: the local FnApiRunner with one worker, in this process's namespace.
    local = _curation(["run", str(manifest), "--direct_num_workers=1", f"--s3_endpoint_url={s3_endpoint}"], launcher, worker_env)
    assert local.returncode == 0, local.stderr[-3000:]
    reference = _locked_outputs(root)
    storage.remove_tree(output)

    assert not pool.sees_the_checkouts_data()
    isolated = _curation(
        [
            "run",
            str(manifest),
            "--environment_type=EXTERNAL",
            f"--environment_config=localhost:{pool.port}",
            "--direct_num_workers=2",
            f"--s3_endpoint_url={s3_endpoint}",
        ],
        launcher,
        worker_env,
    )
    assert isolated.returncode == 0, isolated.stderr[-3000:] + pool.log.read_text()[-3000:]
    outputs = _locked_outputs(root)
    assert outputs == reference
    assert any(path.startswith("shards/") for path in outputs)
    for path, sha in outputs.items():
        assert storage.sha256(storage.join(root, path)) == sha, path
    # The scratch of decide is gone, and neither the launcher nor a worker wrote outside its scratch.
    assert not any(uri.startswith(f"{output}/_cache/work/") for uri in _all_objects(output, s3_endpoint))
    assert sorted(p.name for p in launcher.iterdir()) == ["isolated.yaml"]
    assert pool.files_outside_scratch() == []

    # The release on S3 regenerates and verifies where it lies, its rebuild on S3 beside it.
    release = {uri for uri in _all_objects(root, s3_endpoint)}
    verify = _curation(["regenerate", f"{root}/lock.json", "--verify", "--direct_num_workers=1", f"--s3_endpoint_url={s3_endpoint}"], launcher, worker_env)
    assert verify.returncode == 0, verify.stderr[-3000:]
    assert f"every output of {root} is byte-identical to the lock" in verify.stdout
    assert {uri for uri in _all_objects(root, s3_endpoint)} == release
    assert sorted(p.name for p in launcher.iterdir()) == ["isolated.yaml"]


def _demo_checkout(folder: Path) -> Path:
    """The demo manifest, unchanged, in a copy of the checkout's folders it reads (its paths are relative to
    its folder, and its output lands two levels up): returns the manifest's path."""
    for name in ("data/demo", "lists", "tokenizers", "manifests/demo"):
        shutil.copytree(REPO / name, folder / name)
    return folder / "manifests" / "demo" / "demo.yaml"


def test_the_portable_runner_on_a_shared_disk_worker_pool_writes_the_demo_release(tmp_path):
    """The smoke run of a portable job: Beam's own job service (embedded) hands the demo's pipelines to an
    external worker pool that shares the disk, and the release is the one the default runner writes."""
    scratch = tmp_path / "worker-scratch"
    scratch.mkdir()
    manifest = _demo_checkout(tmp_path)
    root = tmp_path / "out" / "demo" / yaml.safe_load(manifest.read_text())["version"]

    default = _curation(["run", str(manifest)], tmp_path, dict(os.environ))
    assert default.returncode == 0, default.stderr[-3000:]
    reference = _locked_outputs(str(root))
    shutil.rmtree(tmp_path / "out")

    pool = WorkerPool([], scratch, dict(os.environ), tmp_path / "pool.log")
    try:
        portable = _curation(
            ["run", str(manifest), "--runner=PortableRunner", "--job_endpoint=embed", "--environment_type=EXTERNAL", f"--environment_config=localhost:{pool.port}"],
            tmp_path,
            dict(os.environ),
        )
    finally:
        pool.stop()
    assert portable.returncode == 0, portable.stderr[-3000:] + pool.log.read_text()[-3000:]
    assert "Starting worker" in pool.log.read_text()
    # Every source of the demo is mixed, through every stage (dedupe, decontamination), into several shards.
    assert {"shards/part-00002.npy", "documents_complete/web_warc.json", "decontamination/decontamination.json"} <= set(reference)
    assert _locked_outputs(str(root)) == reference
