"""The entry point of the local runner's worker processes: Beam's own SDK worker, in a process that dies with
the driver that started it. Without this, a driver killed by SIGKILL (or the OOM killer) leaves its workers
re-parented to init, running on; on Linux the kernel sends them SIGKILL when the driver ends
(PR_SET_PDEATHSIG), however it ends. Elsewhere they are Beam's workers unchanged."""

from __future__ import annotations

import ctypes
import os
import shlex
import signal
import sys

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def command(driver_pid: int) -> str:
    """The shell command the runner starts each worker with. `exec` makes the worker the driver's own child
    (not a shell's), since the parent-death signal follows the direct parent."""
    return f"exec {shlex.quote(sys.executable)} -m {__name__} {driver_pid}"


def die_with_parent(driver_pid: int) -> None:
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    # The driver may have died before the signal was armed: then no signal is coming, and the worker ends.
    if os.getppid() != driver_pid:
        sys.exit(f"curation worker: driver {driver_pid} is gone")


def main() -> None:
    die_with_parent(int(sys.argv[1]))
    from apache_beam.runners.worker import sdk_worker_main

    sdk_worker_main.main(sys.argv[:1])


if __name__ == "__main__":
    main()
