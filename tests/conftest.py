"""Shared builders: the repo's paths, ../shared (skipping with a reason when absent), small manifests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

# The loopback S3 server fixtures (s3_endpoint, s3_bucket) and the session's small mix for any test that asks.
pytest_plugins = ["helpers_io", "helpers_mix"]

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
DEMO_DATA = REPO / "data" / "demo"
TOKENIZER = REPO / "tokenizers" / "allenai_dolma2.json"


@pytest.fixture(autouse=True, scope="session")
def _session_user_cache(tmp_path_factory):
    """One user cache (curation/user_cache.py) for the whole session, fresh each time: runs under test share
    the indexes they build, and none reads what an older checkout built."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CURATION_CACHE", str(tmp_path_factory.mktemp("user-cache")))
        yield


@pytest.fixture
def shared() -> Path:
    if not SHARED.exists():
        pytest.skip(f"{SHARED} is absent: this test reads the team's shared corpora")
    return SHARED


# Write-only sysfs attributes: the kernel refuses to open them for reading, to root too (EACCES).
_WRITE_ONLY_SYSFS_FILES = ("/sys/bus/pci/rescan", "/sys/class/zram-control/hot_remove")


def link_unopenable_file(path: Path) -> Path:
    """Makes `path` a regular file that open() refuses with a real OSError. Tests run as root, whom chmod 000
    does not stop, so `path` links to a write-only sysfs attribute; as another user, it is a chmod 000 file."""
    if os.geteuid() != 0:
        path.write_bytes(b"")
        path.chmod(0)
        return path
    for target in _WRITE_ONLY_SYSFS_FILES:
        try:
            open(target, "rb").close()
        except PermissionError:
            path.symlink_to(target)
            return path
        except OSError:
            continue
    pytest.skip(f"none of {_WRITE_ONLY_SYSFS_FILES} refuses reading here, and root may open any other file")


def write_manifest(folder: Path, body: dict, name: str = "manifest.yaml") -> Path:
    """A manifest file in `folder`; relative paths in it resolve against that folder."""
    path = folder / name
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path


def small_manifest(tmp_path: Path, **overrides) -> dict:
    """A two-source manifest over copies of shipped demo files (so tests may corrupt their copies)."""
    data = tmp_path / "data"
    (data / "web").mkdir(parents=True)
    (data / "papers").mkdir(parents=True)
    shutil.copy(DEMO_DATA / "web" / "c4-sample.01.json.gz", data / "web")
    shutil.copy(DEMO_DATA / "web" / "c4-sample.02.json.gz", data / "web")
    shutil.copy(DEMO_DATA / "papers" / "arxiv-abstracts-head1000.jsonl.gz", data / "papers")
    body = {
        "name": "small",
        "version": "1.0.0",
        "seed": 7,
        "sources": [
            {"name": "web", "paths": ["data/web/*.json.gz"]},
            {"name": "papers", "paths": ["data/papers/*.jsonl.gz"]},
        ],
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 50_000},
    }
    body.update(overrides)
    return body
