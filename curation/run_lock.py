"""One run at a time per output: every run writing under an `output.path` shares its cache and dedupe's
scratch folder, which a finishing run deletes under any other. The run lock is an flock, which the kernel
releases when its holder dies (so a stale lock on this host is told apart exactly), on a file whose JSON
names the holder for the message a refused run prints."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

import orjson

from curation import storage
from curation.errors import InputError, RunLockedError


@contextmanager
def held(lock_file: str, name: str, version: str, log: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the run lock `lock_file` (a local path or an S3 object) for the body of the `with`, for manifest
    `name` `version`. A lock held by a live run, or left on another host, raises RunLockedError; one left by
    a dead run on this host is reported through `log` and taken over. The lock is removed however the body
    ends."""
    holder = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "manifest": name,
        "version": version,
    }
    if storage.is_s3(lock_file):
        with _held_on_s3(lock_file, holder, log):
            yield
        return
    fd = _acquire(lock_file, holder, log)
    try:
        yield
    finally:
        try:
            # If the file was removed by hand and another run has locked a new one, that one is not ours.
            if _still_at(fd, lock_file):
                os.unlink(lock_file)
        finally:
            os.close(fd)


@contextmanager
def _held_on_s3(lock_file: str, holder: dict[str, Any], log: Callable[[str], None]) -> Iterator[None]:
    """An object created only if absent (a conditional put): S3 has no flock, so a lock whose holder is not
    a process of this host is never taken over, and one whose process here is gone is."""
    body = orjson.dumps(holder, option=orjson.OPT_INDENT_2)
    while not storage.create_exclusive(lock_file, body):
        try:
            with storage.open_binary(lock_file) as f:
                found = _holder_of(f.read())
        except InputError:
            continue  # released meanwhile
        who = _who(found)
        if found.get("host") != holder["host"] or _pid_alive(found.get("pid")):
            raise RunLockedError(
                f"{lock_file} is held by {who}: another run is writing this output; wait for it to end, "
                f"or if that run is dead, remove {lock_file}"
            )
        storage.remove(lock_file)
        log(f"[lock] removed a stale lock left by {who}")
    try:
        yield
    finally:
        with contextlib.suppress(InputError), storage.open_binary(lock_file) as f:
            if _holder_of(f.read()) == holder:
                storage.remove(lock_file)


def _pid_alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _acquire(lock_file: str, holder: dict[str, Any], log: Callable[[str], None]) -> int:
    """The open, flocked lock file. It is written and flocked under a draft name first and then hard-linked
    into place, so no one ever sees it unlocked or without its holder."""
    os.makedirs(os.path.dirname(lock_file), exist_ok=True)
    draft = f"{lock_file}.{holder['host']}.{holder['pid']}"
    fd = os.open(draft, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(fd, orjson.dumps(holder, option=orjson.OPT_INDENT_2))
        # Each pass either takes the lock, refuses, or follows a lock that was released or found stale
        # meanwhile, so it ends as soon as the output stops changing hands.
        while True:
            try:
                os.link(draft, lock_file)
                return fd
            except FileExistsError:
                _remove_if_stale(lock_file, log)
    except BaseException:
        os.close(fd)
        raise
    finally:
        os.unlink(draft)


def _remove_if_stale(lock_file: str, log: Callable[[str], None]) -> None:
    try:
        fd = os.open(lock_file, os.O_RDWR)
    except FileNotFoundError:
        return
    try:
        holder = _read_holder(fd)
        who = _who(holder)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{lock_file} is held by {who}: another run is writing this output; wait for it to end, "
                f"or if that process is gone, remove {lock_file}"
            ) from None
        here = socket.gethostname()
        if holder.get("host") != here:
            # Another host's flock may not reach us over a shared filesystem, so its run may well be alive.
            raise RunLockedError(
                f"{lock_file} is held by {who}: not this host ({here}), so the lock is never taken over "
                f"automatically; wait for that run to end, or if it is dead, remove {lock_file}"
            )
        # Holding the old file's flock now, check it is still the one in place (not replaced meanwhile by
        # another run that removed it as stale before us) before removing it.
        if _still_at(fd, lock_file):
            os.unlink(lock_file)
            log(f"[lock] removed a stale lock left by {who}")
    finally:
        os.close(fd)


def _read_holder(fd: int) -> dict[str, Any]:
    return _holder_of(os.read(fd, 64 * 1024))


def _holder_of(data: bytes) -> dict[str, Any]:
    """The holder a lock names, or nothing when it is not a run lock (written by hand, say)."""
    try:
        holder = orjson.loads(data)
    except orjson.JSONDecodeError:
        return {}
    return holder if isinstance(holder, dict) else {}


def _who(holder: dict[str, Any]) -> str:
    return (
        f"PID {holder.get('pid', '?')} on {holder.get('host', '?')} since {holder.get('started', '?')} "
        f"(manifest {holder.get('manifest', '?')} {holder.get('version', '?')})"
    )


def _still_at(fd: int, path: str) -> bool:
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
