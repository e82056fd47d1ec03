"""Ctrl-C and SIGTERM stop a command cleanly: the local worker processes are killed first (Beam's driver
threads wait on workers that wait on the driver, so otherwise neither ever ends), then the command unwinds
as from any error, releasing its run lock and leaving only outputs that say they are unfinished."""

from __future__ import annotations

import io
import os
import signal
import sys
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


def _children(pid: int | str) -> list[int]:
    children: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:  # not Linux (workers are left to Beam), or `pid` has ended
        return []
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as f:
                children.extend(int(child) for child in f.read().split())
        except FileNotFoundError:  # the thread ended meanwhile
            continue
    return children


def local_worker_pids(parent: int | str = "self") -> list[int]:
    """The local Beam workers of `parent` (this process by default): children of its worker pool's
    forkserver (curation.local_worker), which is its child."""
    grandchildren = [pid for child in _children(parent) for pid in _children(child)]
    return [pid for pid in grandchildren if _name(pid) == local_worker.PROCESS_NAME]


def _name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def stop_local_workers() -> None:
    for pid in local_worker_pids():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


class _MainThreadOnly(io.TextIOBase):
    """Standard error once a stop began: the main thread's lines pass, the other threads' are dropped. Those
    are the runner's gRPC threads failing as the killed workers' streams are cut (gRPC prints their
    tracebacks itself, with `traceback.print_exc`), and the command's one line already says what happened."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text: str) -> int:
        if threading.current_thread() is threading.main_thread():
            return self._stream.write(text)
        return len(text)

    def flush(self) -> None:
        self._stream.flush()


def quiet_other_threads() -> None:
    if not isinstance(sys.stderr, _MainThreadOnly):
        sys.stderr = _MainThreadOnly(sys.stderr)


def _stop(signum: int, frame: FrameType | None) -> None:
    # Left in place until the process ends: the runner's threads notice their workers died after this returns.
    quiet_other_threads()
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
