"""Ctrl-C and SIGTERM stop a command cleanly: the local worker processes are killed first (Beam's driver
threads wait on workers that wait on the driver, so otherwise neither ever ends), then the command unwinds
as from any error, releasing its run lock and leaving only outputs that say they are unfinished."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from curation import local_worker

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """A stop signal reached the command; raised in its main thread once its workers are stopped."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a command ended by a signal: 130 for SIGINT, 143 for SIGTERM."""
        return 128 + self.signum


def local_worker_pids(parent: int | str = "self") -> list[int]:
    """The children of `parent` (this process by default) that are local Beam workers, started through
    curation.local_worker."""
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{parent}/task")
    except FileNotFoundError:  # not Linux (workers are left to Beam), or `parent` has ended
        return []
    for thread in threads:
        try:
            with open(f"/proc/{parent}/task/{thread}/children") as f:
                children.extend(int(pid) for pid in f.read().split())
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    marker = f"-m\0{local_worker.__name__}\0".encode()
    return [pid for pid in children if marker in _cmdline(pid)]


def _cmdline(pid: int) -> bytes:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def stop_local_workers() -> None:
    for pid in local_worker_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def _stop(signum: int, frame: FrameType | None) -> None:
    stop_local_workers()
    raise Interrupted(signum)


@contextmanager
def stop_cleanly_on_signals() -> Iterator[None]:
    """For the body of the `with`, SIGINT and SIGTERM raise Interrupted after stopping the local workers.
    Signal handlers belong to the main thread; elsewhere the body runs with the handlers it has."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.signal(signum, _stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
