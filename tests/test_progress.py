"""Progress as a user at a terminal sees it: a bar or a running line for every phase, none under `--quiet`
(which prints one line), none without a terminal, and no carriage return in the workers' logs."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import sys
import termios
import time

import yaml
from conftest import small_manifest, write_manifest

from curation import progress

FAST = ["--direct_num_workers=1"]


def _drain(fd: int) -> bytes:
    os.set_blocking(fd, False)
    try:
        return os.read(fd, 1 << 16)
    except BlockingIOError:
        return b""


def _drawn(count_done, wanted: bool, on_terminal: bool) -> bytes:
    """What `watch` writes in a short while to a terminal (a pseudo-terminal) or a pipe."""
    reader, writer = pty.openpty() if on_terminal else os.pipe()
    with os.fdopen(writer, "w") as stream:
        with progress.bars(wanted), progress.watch("curate", 4, count_done, stream=stream, interval_s=0.01):
            time.sleep(0.1)
        stream.flush()
        drawn = _drain(reader)  # before the writing side closes, which hangs a terminal up
    os.close(reader)
    return drawn


def test_a_bar_is_drawn_only_on_a_terminal_and_only_when_wanted():
    assert b"curate:" in _drawn(lambda: 3, wanted=True, on_terminal=True)
    assert b"3/4" in _drawn(lambda: 3, wanted=True, on_terminal=True)
    assert b"curate: running" in _drawn(None, wanted=True, on_terminal=True)
    assert _drawn(lambda: 3, wanted=False, on_terminal=True) == b""
    assert _drawn(lambda: 3, wanted=True, on_terminal=False) == b""


def _in_terminal(argv: list[str], cwd) -> tuple[int, str]:
    """A command run with a pseudo-terminal as its stdin, stdout and stderr: its exit code and everything
    it showed there (the terminal turns each newline into \\r\\n)."""
    terminal, child_side = pty.openpty()
    fcntl.ioctl(child_side, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    proc = subprocess.Popen(argv, cwd=cwd, stdin=child_side, stdout=child_side, stderr=child_side)
    os.close(child_side)
    shown = []
    while True:
        try:
            chunk = os.read(terminal, 1 << 16)
        except OSError:  # EIO: the child side is closed
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(terminal)
    return proc.wait(), b"".join(shown).decode(errors="replace")


def test_every_phase_shows_progress_on_a_terminal_and_quiet_shows_one_line(tmp_path):
    body = small_manifest(tmp_path)
    manifest = write_manifest(tmp_path, body)
    code, shown = _in_terminal([sys.executable, "-m", "curation.cli", "run", str(manifest), *FAST], tmp_path)
    assert code == 0, shown
    # Counted phases draw a bar over their files; the others their name and elapsed time.
    for phase in ("curate", "decide", "tokenize", "mix"):
        assert f"\r{phase}:" in shown and "file/s]" in shown.split(f"\r{phase}:", 1)[1].split("\r", 1)[0]
    for phase in ("ledger", "publish", "audit", "lock"):
        assert f"\r{phase}: running 00:" in shown
    logs = list((tmp_path / "out" / "small" / "1.0.0" / "logs").glob("*.log"))
    assert logs and not [log.name for log in logs if b"\r" in log.read_bytes()]

    # A second version reuses the cached pools, decisions and tokens; its own phases still run pipelines.
    body["version"] = "1.0.1"
    manifest.write_text(yaml.safe_dump(body, sort_keys=False))
    argv = [sys.executable, "-m", "curation.cli", "run", str(manifest), "--quiet", *FAST]
    code, shown = _in_terminal(argv, tmp_path)
    lines = shown.replace("\r\n", "\n").splitlines()
    assert code == 0 and "\r" not in shown.replace("\r\n", "\n"), shown
    assert len(lines) == 1 and lines[0].startswith("small 1.0.1: kept 1,020 of 1,020 documents; "), lines
    assert lines[0].split(" at ")[1].startswith(str(tmp_path / "out" / "small" / "1.0.1"))
