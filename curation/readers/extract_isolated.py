"""Runs an extractor (curation.readers.extract) in a child process, so a page that hangs or crashes it costs
that page only, as datatrove's ExtractorSandbox does.

The child is long-lived (one per worker thread and extractor) and fed one page at a time over its pipes, each
way framed as (status, length, UTF-8 bytes). Its time per page is bounded in CPU seconds (the soft RLIMIT_CPU,
raised before each page, so an overrun ends it with SIGXCPU), not wall time, so whether a page times out does
not depend on how loaded the machine is; a wall-clock backstop many times longer catches a child that blocks
without computing. A child that dies or overruns is replaced for the next page.
"""

from __future__ import annotations

import math
import os
import resource
import select
import signal
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass

from curation.readers.extract import EXTRACTORS, _resolved, extractor

# CPU seconds one page may take; a normal page takes milliseconds, the slowest of the 1,014 benchmark pages
# took 0.5 s in trafilatura.
TIMEOUT_CPU_SECONDS = 30
# A child that has not answered after this many wall seconds per CPU second allowed (and at least the
# minimum, which covers its start) is blocked, not busy.
_WALL_PER_CPU_SECOND = 10
_MIN_WALL_SECONDS = 60
_HEADER = struct.Struct("<BQ")  # status, payload length
_OK, _ERROR = 0, 1
_CHILD = (
    "import sys; from curation.readers.extract_isolated import serve; serve(sys.argv[1], int(sys.argv[2]))"
)


@dataclass(frozen=True)
class ExtractFailure:
    """Why a page has no text: `extract_timeout`, `extract_crash` or `extract_error`, and the details."""

    reason: str
    detail: str


class IsolatedExtractor:
    """Runs extractor `name` in a child process, one page at a time."""

    def __init__(self, name: str, timeout_cpu_seconds: float = TIMEOUT_CPU_SECONDS):
        extractor(name)  # a missing library is an error here, not a crash per page
        self._reference = EXTRACTORS[name].function
        self._timeout_cpu_seconds = max(1, int(timeout_cpu_seconds))
        self._child: subprocess.Popen | None = None

    def extract(self, html: str) -> str | ExtractFailure:
        if self._child is None:
            self._child = self._start()
        payload = html.encode("utf-8", "surrogatepass")
        try:
            self._child.stdin.write(_HEADER.pack(_OK, len(payload)) + payload)
            self._child.stdin.flush()
            status, answer = self._answer()
        except (BrokenPipeError, EOFError):
            return self._failed()
        except TimeoutError:
            self.close()
            return ExtractFailure("extract_timeout", f"no answer in {self._wall_seconds()} s of wall time")
        text = answer.decode("utf-8", "surrogatepass")
        return text if status == _OK else ExtractFailure("extract_error", text)

    def close(self) -> None:
        if self._child is not None:
            self._child.kill()
            self._child.wait()
            for pipe in (self._child.stdin, self._child.stdout):
                pipe.close()
            self._child = None

    def __enter__(self) -> IsolatedExtractor:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _start(self) -> subprocess.Popen:
        # The child finds the modules this process does (a test's extractor too).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        return subprocess.Popen(
            [sys.executable, "-c", _CHILD, self._reference, str(self._timeout_cpu_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )

    def _wall_seconds(self) -> int:
        return max(_MIN_WALL_SECONDS, self._timeout_cpu_seconds * _WALL_PER_CPU_SECOND)

    def _answer(self) -> tuple[int, bytes]:
        stdout = self._child.stdout
        ready, _, _ = select.select([stdout], [], [], self._wall_seconds())
        if not ready:
            raise TimeoutError
        status, size = _HEADER.unpack(_read_exactly(stdout, _HEADER.size))
        return status, _read_exactly(stdout, size)

    def _failed(self) -> ExtractFailure:
        """The child died on this page: out of CPU time (SIGXCPU) is a timeout, any other end a crash."""
        returncode = self._child.wait()
        self.close()
        if returncode == -signal.SIGXCPU:
            return ExtractFailure("extract_timeout", f"over {self._timeout_cpu_seconds} s of CPU time")
        how = (
            f"killed by signal {signal.Signals(-returncode).name}"
            if returncode < 0
            else f"exit code {returncode}"
        )
        return ExtractFailure("extract_crash", f"the extractor process ended ({how})")


def _read_exactly(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


_per_thread = threading.local()


def isolated(name: str) -> IsolatedExtractor:
    """This thread's long-lived child for extractor `name` (Beam may read files on several threads)."""
    children = _per_thread.__dict__.setdefault("children", {})
    key = (name, TIMEOUT_CPU_SECONDS)
    if key not in children:
        children[key] = IsolatedExtractor(name, TIMEOUT_CPU_SECONDS)
    return children[key]


def serve(reference: str, cpu_seconds_per_page: int) -> None:
    """The child: answers each page on stdin with its text, or its extractor's error, on stdout."""
    # Answers go to the original stdout alone: whatever the extractor prints goes to stderr instead.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    # A page that kills the child (SIGXCPU, SIGSEGV) leaves no core file behind.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    extract = _resolved(reference)
    pages = sys.stdin.buffer
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    while True:
        try:
            _, size = _HEADER.unpack(_read_exactly(pages, _HEADER.size))
        except EOFError:  # the reader is done (or gone)
            return
        html = _read_exactly(pages, size).decode("utf-8", "surrogatepass")
        used = resource.getrusage(resource.RUSAGE_SELF)
        limit = math.ceil(used.ru_utime + used.ru_stime) + cpu_seconds_per_page
        resource.setrlimit(
            resource.RLIMIT_CPU, (limit if hard == resource.RLIM_INFINITY else min(limit, hard), hard)
        )
        try:
            status, text = _OK, extract(html) or ""
        except Exception as exc:  # the page's own failure, reported as its quarantine detail
            status, text = _ERROR, f"{type(exc).__name__}: {exc}"
        payload = text.encode("utf-8", "surrogatepass")
        answers.write(_HEADER.pack(status, len(payload)) + payload)
        answers.flush()
