"""A lock file can be edited or copied anywhere: regenerate refuses, in one line and before anything moves,
a lock that names an input with no end (a device, a pipe), sits outside its own release folder or lists
outputs outside it; and it rebuilds from the release's manifest copy, never reading the lock's manifest_path."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from conftest import REPO
from helpers_provenance import build_release

from curation.cli import main


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


def listing(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def error_line(stderr: str) -> str:
    """The one line regenerate printed: a refusal is a single error line, never a traceback."""
    (line,) = stderr.strip().splitlines()
    assert line.startswith("curation regenerate: error: "), line
    return line


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def regenerate_in_child(lock_path: Path, *options: str) -> subprocess.CompletedProcess:
    """`curation regenerate` in a child process, so a regression that reads for ever (or waits for a writer
    to a pipe) fails the test instead of hanging the suite."""
    return subprocess.run(
        [sys.executable, "-m", "curation.cli", "regenerate", str(lock_path), *options, "--quiet"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


@pytest.mark.parametrize("kind", ["device", "pipe"])
def test_lock_naming_an_endless_input_fails_at_once(release, tmp_path, kind):
    uri = "/dev/zero" if kind == "device" else str(tmp_path / "pipe")
    if kind == "pipe":
        os.mkfifo(uri)
    endless = {"uri": uri, "size": 0, "sha256": hashlib.sha256(b"").hexdigest(), "source": "web"}
    with crafted_lock(release, lambda lock: lock["inputs"].append(endless)) as lock_path:
        child = regenerate_in_child(lock_path)
    assert child.returncode == 2
    assert f"{uri}: not a regular file" in error_line(child.stderr)
    assert not (release.parent / "1.0.0.previous").exists()


def copy_unrelated(release: Path, folder: Path) -> Path:
    target = folder / "somewhere" / "else" / "entirely"
    target.mkdir(parents=True)
    (target / "notes.txt").write_text("the user's own files")
    shutil.copy(release / "lock.json", target)
    return target / "lock.json"


def copy_unclaimed(release: Path, folder: Path) -> Path:
    """Into a folder named like the release, but holding no release of it."""
    target = folder / "copies" / "small" / "1.0.0"
    target.mkdir(parents=True)
    shutil.copy(release / "lock.json", target)
    return target / "lock.json"


def copy_renamed(release: Path, folder: Path) -> Path:
    """Lock and claim renamed alike, beside the manifest copy (which still names small 1.0.0)."""
    target = folder / "copies" / "renamed" / "9.9.9"
    target.mkdir(parents=True)
    shutil.copy(release / "manifest.yaml", target)
    for name in ("lock.json", "release.json"):
        claim = orjson.loads((release / name).read_bytes())
        claim.update(name="renamed", version="9.9.9")
        (target / name).write_bytes(orjson.dumps(claim))
    return target / "lock.json"


@pytest.mark.parametrize(
    ("place", "refusal"),
    [
        (copy_unrelated, "not the release folder <output>/small/1.0.0/"),
        (copy_unclaimed, "release.json: missing or not a claim of small 1.0.0"),
        (copy_renamed, "the manifest is small 1.0.0, the lock renamed 9.9.9"),
    ],
    ids=["unrelated-folder", "unclaimed-folder", "renamed-lock"],
)
def test_lock_outside_its_release_folder_moves_and_writes_nothing(release, tmp_path, capsys, place, refusal):
    lock_path = place(release, tmp_path)
    output = release.parents[1]
    before = listing(tmp_path), listing(output)
    assert main(["regenerate", str(lock_path), "--quiet", "--direct_num_workers=1"]) == 2
    assert refusal in error_line(capsys.readouterr().err)
    assert (listing(tmp_path), listing(output)) == before


@pytest.mark.parametrize("kind", ["parent", "absolute", "symlink"])
def test_locked_output_outside_the_release_folder_is_refused(release, capsys, kind):
    outside = release.parents[2] / "manifest.yaml"  # the original manifest, beside out/
    uris = {"parent": "../../../manifest.yaml", "absolute": str(outside), "symlink": "audit/outside.yaml"}
    uri = uris[kind]
    entry = {"uri": uri, "size": outside.stat().st_size, "sha256": sha256_of(outside)}
    link = release / "audit" / "outside.yaml"
    if kind == "symlink":
        link.symlink_to(outside)
    try:
        with crafted_lock(release, lambda lock: lock["outputs"].append(entry)) as lock_path:
            code = main(["regenerate", str(lock_path), "--verify", "--quiet", "--direct_num_workers=1"])
    finally:
        link.unlink(missing_ok=True)
    assert code == 2
    assert f"the lock's output {uri!r} is not a path inside this release folder" in error_line(
        capsys.readouterr().err
    )
    assert not (release.parent / "1.0.0.previous").exists()


@contextmanager
def manifest_moved(release: Path) -> Iterator[None]:
    """The manifest the release was built from, renamed for the body of the `with`, then put back."""
    manifest = release.parents[2] / "manifest.yaml"
    manifest.rename(manifest.with_suffix(".moved"))
    try:
        yield
    finally:
        manifest.with_suffix(".moved").rename(manifest)


@contextmanager
def manifest_path_a_pipe(release: Path) -> Iterator[None]:
    """The lock naming, as its manifest, a pipe nobody writes to (which would block a reader for ever)."""
    pipe = release.parents[2] / "manifest-pipe.yaml"  # beside the original, so relative paths resolve alike
    os.mkfifo(pipe)
    try:
        with crafted_lock(release, lambda lock: lock.update(manifest_path=str(pipe))):
            yield
    finally:
        pipe.unlink()


# The module's release, rebuilt in place and verified identical: refusals above never touch it, and each case
# puts back what it changed.
@pytest.mark.parametrize("change", [manifest_path_a_pipe, manifest_moved], ids=["pipe", "moved"])
def test_rebuild_never_reads_the_manifest_the_lock_names(release, change):
    with change(release):
        child = regenerate_in_child(release / "lock.json", "--verify", "--direct_num_workers=1")
    assert child.returncode == 0, child.stderr[-2000:]
    assert f"verified: every output of {release} is byte-identical to the lock" in child.stdout
    assert not (release.parent / "1.0.0.previous").exists()
