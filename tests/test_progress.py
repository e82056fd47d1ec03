"""Progress as a user at a terminal sees it: a bar or a running line for every phase, none under `--quiet`
(which prints one line), none without a terminal, and no carriage return in the workers' logs."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import apache_beam as beam
import yaml
from conftest import small_manifest, write_manifest

from curation import progress, storage
from curation.engine import pipeline_options, run_pipeline
from curation.stages.decide_progress import MarkStepDone, finished_parts, step_marker_uri
from curation.stages.verdicts import write_pool_verdicts

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
    # The release (the mix's shards and documents, the ledger, audit index and checksums) is one pipeline.
    for phase in ("curate", "decide", "tokenize", "release"):
        assert f"\r{phase}:" in shown and "file/s]" in shown.split(f"\r{phase}:", 1)[1].split("\r", 1)[0]
    assert not [phase for phase in ("mix", "publish", "ledger", "audit", "lock") if f"\r{phase}:" in shown]
    # Decide's bar counts its 2 steps (ids, quality) and its 3 pools' verdicts; that it moves before decide
    # ends is shown by the file order in the test below (a poll every 0.5 s may miss a fast decide's steps).
    decide_totals = {int(total) for total in re.findall(r"\rdecide:[^\r]*?\| \d+/(\d+) \[", shown)}
    assert decide_totals == {2 + 3}, decide_totals
    assert list((tmp_path / "out" / "_cache" / "work").iterdir()) == []  # the markers went with decide's scratch
    logs = list((tmp_path / "out" / "small" / "1.0.0" / "logs").glob("*.log"))
    assert logs and not [log.name for log in logs if b"\r" in log.read_bytes()]
    curate_log = (tmp_path / "out" / "small" / "1.0.0" / "logs" / "curate.log").read_text()
    assert "curate: curate/documents_read 1,020" in curate_log and "1 local worker(s)" in curate_log, curate_log

    # A second version reuses the cached pools, decisions and tokens; its own phases still run pipelines.
    body["version"] = "1.0.1"
    manifest.write_text(yaml.safe_dump(body, sort_keys=False))
    argv = [sys.executable, "-m", "curation.cli", "run", str(manifest), "--quiet", *FAST]
    code, shown = _in_terminal(argv, tmp_path)
    lines = shown.replace("\r\n", "\n").splitlines()
    assert code == 0 and "\r" not in shown.replace("\r\n", "\n"), shown
    assert len(lines) == 1 and lines[0].startswith("small 1.0.1: kept 1,020 of 1,020 documents; "), lines
    assert lines[0].split(" at ")[1].startswith(str(tmp_path / "out" / "small" / "1.0.1"))


def test_decides_step_markers_appear_before_its_pools_verdicts(tmp_path):
    """What decide's bar counts, watched during a real run: each step's marker was written before the first
    pool's verdicts (by the files' own times, whatever the poll's), so the count rises while decide works."""
    manifest = write_manifest(tmp_path, small_manifest(tmp_path))
    run = subprocess.Popen([sys.executable, "-m", "curation.cli", "run", str(manifest), "--quiet", *FAST], cwd=tmp_path)
    written: dict[str, int] = {}
    cache = tmp_path / "out" / "_cache"
    while run.poll() is None:
        for path in [*cache.glob("work/*/progress/*.done"), *cache.glob("decisions/*/verdicts/*.counts.json")]:
            try:
                written.setdefault(path.name, path.stat().st_mtime_ns)
            except FileNotFoundError:  # a marker removed with decide's scratch between the listing and the stat
                pass
        time.sleep(0.005)
    assert run.returncode == 0
    markers = {name: ns for name, ns in written.items() if name.endswith(".done")}
    verdicts = [ns for name, ns in written.items() if name.endswith(".counts.json")]
    assert set(markers) == {"ids.done", "quality.done"} and len(verdicts) == 3, written
    assert max(markers.values()) < min(verdicts), written


def test_decide_step_markers_and_pool_verdicts_are_counted_on_s3(s3_bucket):
    folder, work_dir = storage.join(s3_bucket, "decisions"), storage.join(s3_bucket, "work")
    steps, pools = ["ids", "quality"], ["pool-a", "pool-b"]
    assert finished_parts(folder, work_dir, steps, pools) == 0
    run_pipeline(
        pipeline_options(FAST),
        lambda p: p | beam.Create(range(3)) | "MarkQualityDone" >> MarkStepDone(work_dir, "quality"),
    )
    with storage.open_binary(step_marker_uri(work_dir, "quality")) as f:
        assert f.read() == b"3"
    run_pipeline(pipeline_options(FAST), lambda p: p | beam.Create([]) | "MarkIdsDone" >> MarkStepDone(work_dir, "ids"))
    with storage.open_binary(step_marker_uri(work_dir, "ids")) as f:
        assert f.read() == b"0"
    # Several PCollections, one of them empty, are counted together.
    run_pipeline(
        pipeline_options(FAST),
        lambda p: tuple(p | f"Records{n}" >> beam.Create(range(n)) for n in (2, 0, 5)) | MarkStepDone(work_dir, "dedupe"),
    )
    with storage.open_binary(step_marker_uri(work_dir, "dedupe")) as f:
        assert f.read() == b"7"
    write_pool_verdicts(folder, "pool-a", [{"i": 0, "id": "d0", "verdict": "kept"}])
    assert finished_parts(folder, work_dir, steps, pools) == 3
