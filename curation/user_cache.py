"""This user's cache of files derived from a run's inputs (decontamination indexes), named by the digest of
what they are made from, so a run on any output reuses what an earlier run built. Each entry has a sidecar
with its own sha256: an entry that does not match it (a disk error, a process killed between the two
writes, a hand edit) is rebuilt, with a warning. Entries appear whole (written then renamed), and a lock per
entry keeps concurrent runs from building one twice. Local scratch: deleting the folder costs only time."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Callable
from typing import BinaryIO

from curation import storage

CACHE_ENV = "CURATION_CACHE"


def user_cache_dir(*parts: str) -> str:
    """`CURATION_CACHE`, else `$XDG_CACHE_HOME/curation`, else `~/.cache/curation`; created on first use."""
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "curation"
    )
    folder = os.path.join(root, *parts)
    os.makedirs(folder, exist_ok=True)
    return folder


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _intact(path: str) -> bool | None:
    """True for a whole entry, None for no entry, False for one whose bytes or sidecar are wrong or missing."""
    sidecar = path + ".sha256"
    if not os.path.exists(path) and not os.path.exists(sidecar):
        return None
    try:
        with open(sidecar) as f:
            return f.read().strip() == _sha256(path)
    except FileNotFoundError:
        return False


def holds(folder: str, name: str) -> bool:
    """Whether the local `folder` has a whole entry `name` (one that matches its sidecar)."""
    return bool(_intact(os.path.join(folder, name)))


def digest_named_file(
    folder: str, name: str, write: Callable[[BinaryIO], None], warn: Callable[[str], None]
) -> str:
    """The path of entry `name` in the local `folder`, first written by `write` if it is absent or corrupt.

    `name` must carry the digest of everything the bytes depend on: an intact entry is used as it is."""
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    if _intact(path):
        return path
    with open(path + ".lock", "wb") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = _intact(path)  # another process may have built it while this one waited
        if state:
            return path
        if state is False:
            warn(f"[cache] {path} does not match its recorded sha256 (corrupt or incomplete); rebuilding it")
        with storage.atomic_write(path) as f:
            write(f)
        with storage.atomic_write(path + ".sha256") as f:
            f.write(_sha256(path).encode())
    return path
