"""A lock file can be edited or copied anywhere: regenerate refuses, in one line and before anything moves,
a lock that names an input with no end (a device, a pipe)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from conftest import REPO
from helpers_provenance import build_release


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.mktemp("regenerate-safety"))


@contextmanager
def crafted_lock(release: Path, craft: Callable[[dict], None]) -> Iterator[Path]:
    """The release's own lock.json as changed by `craft` for the body of the `with`, then put back."""
    lock_path = release / "lock.json"
    original = lock_path.read_bytes()
    lock = orjson.loads(original)
    craft(lock)
    lock_path.write_bytes(orjson.dumps(lock))
    try:
        yield lock_path
    finally:
        lock_path.write_bytes(original)


def error_line(stderr: str) -> str:
    """The one line regenerate printed: a refusal is a single error line, never a traceback."""
    (line,) = stderr.strip().splitlines()
    assert line.startswith("curation regenerate: error: "), line
    return line


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_lock_naming_an_endless_input_fails_at_once(release, tmp_path, kind):
    uri = "/dev/zero" if kind == "device" else str(tmp_path / "pipe")
    if kind == "pipe":
        os.mkfifo(uri)
    endless = {"uri": uri, "size": 0, "sha256": hashlib.sha256(b"").hexdigest(), "source": "web"}
    with crafted_lock(release, lambda lock: lock["inputs"].append(endless)) as lock_path:
        # In a child process, so a regression (reading for ever, or waiting for a writer) fails, not hangs.
        child = subprocess.run(
            [sys.executable, "-m", "curation.cli", "regenerate", str(lock_path), "--quiet"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
    assert child.returncode == 2
    assert f"{uri}: not a regular file" in error_line(child.stderr)
    assert not (release.parent / "1.0.0.previous").exists()
