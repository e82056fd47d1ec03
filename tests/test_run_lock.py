"""The run lock: a second run on an output is refused while the first lives, a dead run's lock is taken
over on its own host only, and the lock goes away however a run ends."""

from __future__ import annotations

import gzip
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import helpers_io
import orjson
import pytest
from conftest import REPO, small_manifest, write_manifest

from curation import run_lock, storage
from curation.cli import main
from curation.errors import InputError, RunLockedError
from curation.layout import RunLayout
from curation.pipeline import run
from curation.regenerate import regenerate
from mixes.manifest import load_manifest

FAST = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
LEFT_AT = "2024-05-01T12:00:00+00:00"

# Holds the lock until the test closes its stdin (or dies, which closes it too).
HOLDER = """
import sys
from curation import run_lock
with run_lock.held(sys.argv[1], "other", "2.0.0"):
    print("locked", flush=True)
    sys.stdin.read()
"""

# `curation run` that starts only when told, once both racers have imported Beam, so they really overlap.
RACER = """
import sys
from curation.cli import main
print("ready", flush=True)
sys.stdin.readline()
sys.exit(main())
"""


def lock_file(tmp_path: Path) -> Path:
    return Path(RunLayout.for_manifest(str(tmp_path / "out"), "small", "1.0.0").run_lock_file)


def dead_pid() -> int:
    """The PID of a process that has ended (and been reaped)."""
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    return int(child.stdout)


def leave_lock(path: Path, host: str, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    holder = {"host": host, "pid": pid, "started": LEFT_AT, "manifest": "small", "version": "1.0.0"}
    path.write_bytes(orjson.dumps(holder))


@contextmanager
def lock_held_by_another_process(path: Path) -> Iterator[subprocess.Popen]:
    command = [sys.executable, "-c", HOLDER, str(path)]
    holder = subprocess.Popen(command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "locked\n"
        yield holder
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()


def test_a_run_is_refused_while_a_live_process_holds_the_lock(tmp_path, capsys):
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    with lock_held_by_another_process(lock_file(tmp_path)) as holder:
        assert main(["run", str(manifest), *FAST]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert err.startswith("curation run: error: ") and str(lock_file(tmp_path)) in err
    assert f"PID {holder.pid} on {socket.gethostname()} since " in err and "wait for it to end" in err
    assert not (tmp_path / "out" / "small").exists()
    assert not lock_file(tmp_path).exists()


@pytest.fixture(scope="module")
def run_over_a_stale_lock(tmp_path_factory) -> tuple[Path, int, list[str]]:
    """A finished run of the small manifest that found a stale lock of this host's: its folder, the dead PID
    the lock named and the run's log lines."""
    folder = tmp_path_factory.mktemp("stale")
    manifest = write_manifest(folder, small_manifest(folder))
    pid = dead_pid()
    leave_lock(lock_file(folder), socket.gethostname(), pid)
    logs: list[str] = []
    run(load_manifest(manifest), FAST, log=logs.append)
    return folder, pid, logs


def test_a_stale_lock_on_this_host_is_reported_taken_over_and_removed_after_the_run(run_over_a_stale_lock):
    folder, pid, logs = run_over_a_stale_lock
    stale = f"[lock] removed a stale lock left by PID {pid} on {socket.gethostname()} since {LEFT_AT}"
    assert any(line.startswith(stale) for line in logs)
    assert (folder / "out" / "small" / "1.0.0" / "lock.json").exists()
    assert not lock_file(folder).exists()


def test_regenerate_is_refused_before_it_moves_anything_while_a_run_holds_the_lock(run_over_a_stale_lock):
    tmp_path = run_over_a_stale_lock[0]  # a finished release
    root = tmp_path / "out" / "small" / "1.0.0"
    with lock_held_by_another_process(lock_file(tmp_path)):
        with pytest.raises(RunLockedError, match="another run is writing this output"):
            regenerate(str(root / "lock.json"), FAST, log=lambda _: None)
    assert (root / "lock.json").exists() and (tmp_path / "out" / "_cache").is_dir()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["_cache", "small"]


def test_a_lock_left_on_another_host_is_never_taken_over(tmp_path, capsys):
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    leave_lock(lock_file(tmp_path), "elsewhere.example", dead_pid())
    assert main(["run", str(manifest), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"on elsewhere.example since {LEFT_AT}" in err and "never taken over automatically" in err
    assert lock_file(tmp_path).exists() and not (tmp_path / "out" / "small").exists()


def test_a_failing_run_removes_its_lock(tmp_path):
    body = small_manifest(tmp_path)
    body["sources"][0]["on_error"] = "fail"
    bad = gzip.compress(b'{"id": "a", "text": "fine"}\n{broken\n')
    (tmp_path / "data" / "web" / "bad.json.gz").write_bytes(bad)
    with pytest.raises(InputError, match="invalid_json"):
        run(load_manifest(write_manifest(tmp_path, body)), FAST, log=lambda _: None)
    assert not lock_file(tmp_path).exists()


def test_of_two_concurrent_runs_one_finishes_and_the_other_is_refused(tmp_path):
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    command = [sys.executable, "-c", RACER, "run", str(manifest), *FAST, "--quiet"]
    pipes = {"stdin": subprocess.PIPE, "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    runs = [subprocess.Popen(command, cwd=REPO, text=True, **pipes) for _ in range(2)]
    for p in runs:
        assert p.stdout.readline() == "ready\n"
    for p in runs:
        p.stdin.write("go\n")
        p.stdin.flush()
    errs = {p.pid: p.communicate(timeout=300)[1] for p in runs}
    winner, loser = sorted(runs, key=lambda p: p.returncode)
    assert (winner.returncode, loser.returncode) == (0, 2)
    assert len(errs[loser.pid].splitlines()) == 1
    assert f"is held by PID {winner.pid} on {socket.gethostname()} since " in errs[loser.pid]
    assert (tmp_path / "out" / "small" / "1.0.0" / "lock.json").exists()
    assert not lock_file(tmp_path).exists()


# --- the run lock of an output on S3 -----------------------------------------------------------------

s3_endpoint = helpers_io.s3_endpoint
s3_bucket = helpers_io.s3_bucket


def _put_holder(uri: str, **holder) -> None:
    with storage.atomic_write(uri) as f:
        f.write(orjson.dumps(holder))


def test_on_s3_a_second_holder_is_refused_and_the_lock_goes_when_the_first_ends(s3_bucket):
    lock = f"{s3_bucket}/out/_cache.lock"
    with run_lock.held(lock, "small", "1.0.0"):
        with storage.open_binary(lock) as f:
            assert orjson.loads(f.read())["pid"] == os.getpid()
        with pytest.raises(RunLockedError, match="another run is writing this output"):
            with run_lock.held(lock, "other", "2.0.0"):
                pass
        assert storage.exists(lock)
    assert not storage.exists(lock)


def test_on_s3_a_dead_process_of_this_host_loses_its_lock_and_another_host_keeps_it(s3_bucket):
    lock = f"{s3_bucket}/out/_cache.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    _put_holder(lock, host=socket.gethostname(), pid=int(dead.stdout), started=LEFT_AT, manifest="x", version="1")
    said = []
    with run_lock.held(lock, "small", "1.0.0", said.append):
        pass
    assert said == [f"[lock] removed a stale lock left by PID {int(dead.stdout)} on {socket.gethostname()} since {LEFT_AT} (manifest x 1)"]
    assert not storage.exists(lock)

    _put_holder(lock, host="elsewhere.example", pid=int(dead.stdout), started=LEFT_AT, manifest="x", version="1")
    with pytest.raises(RunLockedError, match=f"if that run is dead, remove {lock}"):
        with run_lock.held(lock, "small", "1.0.0"):
            pass
    assert storage.exists(lock)
