"""Failures a user can act on are one line (tracebacks with --debug and in the run's log), a stopped run takes
its worker processes with it and releases its run lock, a release says it is incomplete until its lock is
written, a stopped run's temporary files are cleaned by the next, and the run's time covers all of it."""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

import apache_beam as beam
import pytest
from conftest import REPO, small_manifest, write_manifest

from curation import storage
from curation.cli import main
from curation.engine import pipeline_options, run_pipeline
from curation.errors import CurationError, StorageError
from curation.interrupts import local_worker_pids, quiet_other_threads
from curation.layout import RunLayout
from curation.pipeline import run
from curation.release_state import INCOMPLETE
from mixes.manifest import load_manifest

FAST = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
TWO_WORKERS = ["--direct_num_workers=2", "--direct_running_mode=multi_processing"]


def curation_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "curation.cli", *args]


def release_root(tmp_path: Path) -> Path:
    return tmp_path / "out" / "small" / "1.0.0"


# --- one-line errors -------------------------------------------------------------------------------------


def test_a_full_disk_is_one_line_naming_the_folder_with_the_traceback_under_debug_and_in_the_log(tmp_path):
    """Real ENOSPC: the output is a 400 KiB tmpfs, mounted in a private mount namespace."""
    if shutil.which("unshare") is None:
        pytest.skip("util-linux's unshare is not installed")
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    out = tmp_path / "out"
    out.mkdir()
    run_cmd = " ".join(curation_command("run", str(manifest), "--quiet"))
    debug_cmd = " ".join(curation_command("--debug", "run", str(manifest), "--quiet"))
    script = f"""
        mount -t tmpfs -o size=400k tmpfs {out} || exit 97
        {run_cmd} {" ".join(TWO_WORKERS)} 2> {tmp_path}/plain.err; echo $? > {tmp_path}/plain.rc
        {debug_cmd} {" ".join(FAST)} 2> {tmp_path}/debug.err; echo $? > {tmp_path}/debug.rc
        cp {out}/small/1.0.0/logs/run.log {tmp_path}/run.log
    """
    namespace = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script], cwd=REPO)
    if namespace.returncode == 97 or not (tmp_path / "plain.rc").exists():
        pytest.skip("mounting a small tmpfs needs root and a private mount namespace")
    plain = (tmp_path / "plain.err").read_text()
    assert (tmp_path / "plain.rc").read_text().strip() == "2"
    assert len(plain.splitlines()) == 1, plain
    assert plain.startswith(f"curation run: error: disk full on {out}/") and "free space" in plain
    assert "(in step " in plain  # it happened in a worker process
    debug = (tmp_path / "debug.err").read_text()
    assert (tmp_path / "debug.rc").read_text().strip() == "2"
    assert "Traceback (most recent call last)" in debug and "[Errno 28]" in debug
    assert debug.splitlines()[-1].startswith(f"curation run: error: disk full on {out}/")
    assert "No space left on device" in (tmp_path / "run.log").read_text()


def test_an_s3_error_in_a_worker_process_is_one_storage_error(s3_endpoint, tmp_path):
    # Nested, so it travels to the workers by value: they cannot import this test module.
    def _write_to(uri: str) -> None:
        with storage.atomic_write(uri) as f:
            f.write(b"data")

    options = pipeline_options([*TWO_WORKERS, "--s3_endpoint_url", s3_endpoint, "--s3_region_name=us-east-1"])
    with pytest.raises(StorageError) as raised:
        run_pipeline(
            options,
            lambda p: p | beam.Create(["s3://no-such-bucket/a"]) | beam.Map(_write_to),
            log_path=str(tmp_path / "worker.log"),
        )
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("S3 NoSuchBucket (in step Map(_write_to)): ") and "check the endpoint" in message


def test_an_os_error_in_a_worker_process_names_its_file(tmp_path):
    def _open(path: str) -> None:
        open(path, "rb").close()

    target = tmp_path / "missing" / "folder" / "file"
    options = pipeline_options(TWO_WORKERS)
    expected = rf"^no such file or folder on {re.escape(str(target))} \(in step Map\(_open\)\): check the path"
    with pytest.raises(StorageError, match=expected):
        run_pipeline(options, lambda p: p | beam.Create([str(target)]) | beam.Map(_open), log_path=None)


def test_a_bug_is_not_taken_for_an_expected_failure():
    with pytest.raises(Exception, match="division by zero") as raised:
        run_pipeline(pipeline_options(FAST), lambda p: p | beam.Create([0]) | beam.Map(lambda x: 1 / x))
    assert not isinstance(raised.value, CurationError)


# --- stopping a run --------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    """Running, or stopped but not yet reaped: a zombie has let go of everything but its PID."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _start_run_and_wait_for_workers(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    command = curation_command("run", str(manifest), "--quiet", *TWO_WORKERS)
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Only guards against a hang: a busy machine may take a minute to start Beam.
    deadline = time.monotonic() + 300
    while proc.poll() is None and time.monotonic() < deadline and len(local_worker_pids(proc.pid)) < 2:
        time.sleep(0.05)
    workers = local_worker_pids(proc.pid)
    assert len(workers) == 2, "the run should be in its first phase, with two worker processes"
    return proc, workers


def _wait_until_gone(pids: list[int], seconds: float = 20) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def test_workers_die_with_a_driver_killed_by_sigkill(tmp_path):
    proc, workers = _start_run_and_wait_for_workers(tmp_path)
    proc.kill()
    proc.communicate(timeout=60)
    assert _wait_until_gone(workers) == []
    assert not (release_root(tmp_path) / "lock.json").exists()
    assert (release_root(tmp_path) / INCOMPLETE).exists()


def test_after_a_stop_only_the_main_threads_lines_reach_standard_error(capsys):
    """What gRPC's threads print as the killed workers' streams are cut (a traceback of `grpc.RpcError`, seen
    in CI after a SIGINT) must not reach the user, whose one line is the main thread's."""

    def a_runner_thread_failing():
        try:
            raise RuntimeError("stream cut")
        except RuntimeError:
            traceback.print_exc()

    quiet_other_threads()
    quiet_other_threads()  # a second signal during the stop wraps nothing twice
    thread = threading.Thread(target=a_runner_thread_failing)
    thread.start()
    thread.join()
    print("curation run: stopped by SIGINT", file=sys.stderr)
    assert capsys.readouterr().err == "curation run: stopped by SIGINT\n"


@pytest.mark.parametrize("signum, exit_code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_stop_signal_ends_the_run_cleanly(tmp_path, signum, exit_code):
    proc, workers = _start_run_and_wait_for_workers(tmp_path)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == exit_code
    assert err.splitlines() == [
        f"curation run: stopped by {signal.Signals(signum).name}: workers stopped, nothing unfinished was "
        "released; finished work is kept and a rerun resumes from it"
    ]
    assert _wait_until_gone(workers, seconds=5) == []
    layout = RunLayout.for_manifest(str(tmp_path / "out"), "small", "1.0.0")
    assert not Path(layout.run_lock_file).exists()
    assert (release_root(tmp_path) / INCOMPLETE).exists() and not (release_root(tmp_path) / "lock.json").exists()
    assert main(["stats", str(release_root(tmp_path))]) == 2


# --- incomplete releases, temporaries, time ---------------------------------------------------------------


@pytest.fixture(scope="module")
def released(tmp_path_factory) -> Path:
    """The folder of a finished small release, shared: each test that damages it has the next run repair it."""
    folder = tmp_path_factory.mktemp("released")
    run(load_manifest(write_manifest(folder, small_manifest(folder))), FAST, log=lambda _: None)
    return folder


def test_a_release_stopped_before_its_lock_is_incomplete_to_stats_and_audit(released, capsys):
    manifest = released / "manifest.yaml"
    root = release_root(released)
    assert not (root / INCOMPLETE).exists()
    assert main(["stats", str(root)]) == 0
    # As a run stopped while publishing leaves it: finished shards with their sidecars, but no lock.
    (root / "lock.json").unlink()
    assert sorted(root.glob("shards/*.json"))
    capsys.readouterr()
    for command in (["stats", str(root)], ["audit", str(root), "--doc", "x"]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and f"{root}: incomplete release: " in err
    # The next run finishes it.
    run(load_manifest(manifest), FAST, log=lambda _: None)
    assert (root / "lock.json").exists() and not (root / INCOMPLETE).exists()
    assert main(["stats", str(root)]) == 0


def test_a_marker_left_beside_a_written_lock_is_removed_by_the_next_run(released):
    manifest = released / "manifest.yaml"
    root = release_root(released)
    (root / INCOMPLETE).write_text("a run stopped between writing the lock and removing this")
    logs: list[str] = []
    run(load_manifest(manifest), FAST, log=logs.append)
    assert any("already released" in line for line in logs)
    assert not (root / INCOMPLETE).exists()


def test_an_invalid_json_lock_or_stats_file_is_one_line(tmp_path, capsys):
    root = tmp_path / "out" / "n" / "1.0.0"
    root.mkdir(parents=True)
    (root / "lock.json").write_text("{not json")
    (root / "stats.json").write_text('{"totals":')
    for command, bad in (
        (["regenerate", str(root / "lock.json")], "lock.json: not a lock file (invalid JSON"),
        (["audit", str(root), "--build-index"], "lock.json: not a lock file (invalid JSON"),
        (["stats", str(root)], "stats.json: invalid JSON"),
    ):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert len(err.splitlines()) == 1 and bad in err, err


def test_temporary_files_a_stopped_run_left_in_the_cache_are_removed_by_the_next_run(tmp_path):
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    cache = tmp_path / "out" / "_cache"
    # Real temporaries, as atomic_write names them, left by writers that never finished.
    names, unfinished = [], []
    for folder in (cache / "pool" / "web", cache / "tokens"):
        unfinished.append(storage.atomic_write(str(folder / "x.pool.jsonl.zst")))
        unfinished[-1].__enter__().write(b"half")
        names.extend(folder.glob(".*.tmp"))
    assert len(names) == 2
    keep = cache / "pool" / "web" / "notes.tmp"  # not atomic_write's pattern: not ours to remove
    keep.write_text("mine")
    logs: list[str] = []
    run(load_manifest(manifest), FAST, log=logs.append)
    assert "[cache] removed 2 temporary files left by a stopped run" in logs
    assert not any(path.exists() for path in names)
    assert keep.exists()
    assert list(cache.rglob(".*.tmp")) == []


def test_stopped_s3_uploads_are_aborted(s3_endpoint, s3_bucket):
    import boto3

    storage.configure_s3(endpoint_url=s3_endpoint)  # `main` in an earlier test set the client from its options
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    bucket = s3_bucket.removeprefix("s3://")
    client.create_multipart_upload(Bucket=bucket, Key="out/_cache/pool/web/x.pool.jsonl.zst")
    client.create_multipart_upload(Bucket=bucket, Key="elsewhere/y")
    assert storage.remove_temporaries(f"{s3_bucket}/out/_cache") == 1
    left = [u["Key"] for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == ["elsewhere/y"]


def test_the_printed_time_covers_the_whole_run_phase_by_phase(tmp_path, capsys):
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    started = time.monotonic()
    assert main(["run", str(manifest), *FAST]) == 0
    wall_s = time.monotonic() - started
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    elapsed_s = float(first.rsplit(" in ", 1)[1].removesuffix(" s"))
    times = next(line for line in out.splitlines() if line.startswith("  time: "))
    phases = dict(part.rsplit(" ", 2)[:2] for part in times.removeprefix("  time: ").split(", "))
    assert list(phases) == ["curate", "decide", "tokenize", "release"]
    # The run's own clock, from before its first phase to after its lock, against the test's around it.
    assert sum(float(s) for s in phases.values()) <= elapsed_s + 0.5 and elapsed_s <= wall_s + 0.1
    stats_json = (release_root(tmp_path) / "stats.json").read_text()
    assert "elapsed_s" not in stats_json and "phases_s" not in stats_json
