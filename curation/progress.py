"""Progress of a phase, seen from the driver: the phase's outputs are content-addressed files, so counting
the finished ones measures progress on any runner (local processes or a remote cluster) without asking
the workers. A bar is drawn only on a terminal."""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, TextIO

from tqdm import tqdm


@contextmanager
def watch(
    label: str, total: int, count_done: Callable[[], int], stream: TextIO | None = None, interval_s: float = 0.5
) -> Iterator[None]:
    stream = stream or sys.stderr
    if total <= 0 or not stream.isatty():
        yield
        return
    bar = tqdm(total=total, desc=label, unit="file", file=stream, leave=False)
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(interval_s):
            bar.n = min(total, count_done())
            bar.refresh()

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        bar.close()
