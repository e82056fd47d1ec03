"""Progress of a phase, seen from the driver: the phase's outputs are content-addressed files, so counting
the finished ones measures progress on any runner (local processes or a remote cluster) without asking
the workers. A phase with no countable outputs shows its name and elapsed time, so no phase looks hung.
Bars are drawn only on a terminal, and never under `--quiet`."""

from __future__ import annotations

import contextvars
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from tqdm import tqdm

# Whether the command wants bars at all: set once by the command (`--quiet` says no), read by every
# pipeline it runs, so the choice is not threaded through each stage that starts a pipeline.
_bars_wanted = contextvars.ContextVar("bars_wanted", default=True)


@contextmanager
def bars(wanted: bool) -> Iterator[None]:
    token = _bars_wanted.set(wanted)
    try:
        yield
    finally:
        _bars_wanted.reset(token)


@contextmanager
def watch(
    label: str,
    total: int | Callable[[], int] = 0,
    count_done: Callable[[], int] | None = None,
    stream: TextIO | None = None,
    interval_s: float = 0.5,
) -> Iterator[None]:
    """A bar over `total` outputs, polled with `count_done`; without `count_done`, `label`'s elapsed time.
    `total` is polled too when a phase learns it as it goes (the mix, from the shards it plans)."""
    stream = stream or sys.stderr
    if not label or not _bars_wanted.get() or not stream.isatty():
        yield
        return
    if count_done is None:
        bar = tqdm(desc=label, bar_format="{desc}: running {elapsed}", file=stream, leave=False)
    else:
        bar = tqdm(total=_total(total), desc=label, unit="file", file=stream, leave=False)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval_s):
            if count_done is not None:
                bar.total = _total(total)
                bar.n = min(bar.total, count_done())
            bar.refresh()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()


def _total(total: int | Callable[[], int]) -> int:
    return total() if callable(total) else total
