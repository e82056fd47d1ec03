"""Every kind of hostile input in tests/hostile/corpus.py through a real `curation run`, in both `on_error`
modes. Quarantine mode: one run with a source per kind completes in bounded memory, each source's accounting
holds and its bad record is quarantined with the kind's reason. Fail mode: a run per kind stops with one line
naming the file and the reason, and leaves no release that looks complete; a kind with no bad record in it
(an empty file, a link out of the folder) completes, counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
from conftest import REPO, TOKENIZER, write_manifest

from curation import cli
from curation.release_state import INCOMPLETE
from hostile.corpus import CASES, available, build

# Peak resident memory of a whole run: measured at ~310 MB with two 2 GiB bombs; decoding one whole would
# pass the bound.
PEAK_RSS_BOUND = 1536 * 1024 * 1024
FAST_BEAM = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
COUNTED = ("empty_files", "skipped_symlinks")
BUILT = [c for c in CASES if available(c) is None]
CASE_PARAMS = [
    pytest.param(c, id=c.kind, marks=() if c in BUILT else pytest.mark.skip(available(c))) for c in CASES
]


def _manifest(folder: Path, sources: list[dict]) -> Path:
    body = {
        "name": "hostile",
        "version": "1.0.0",
        "seed": 13,
        "sources": sources,
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": 50_000},
    }
    return write_manifest(folder, body)


def _run_measured(manifest: Path) -> tuple[int, str, int]:
    """`curation run` in a child process: its exit code, its stderr and its peak resident memory in bytes."""
    with open(manifest.parent / "stderr", "w+b") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "curation.cli", "run", "--quiet", str(manifest), *FAST_BEAM],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return child.returncode, err.read().decode(errors="replace"), usage.ru_maxrss * 1024


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, dict]:
    return build(tmp_path_factory.mktemp("hostile") / "in", BUILT)


@pytest.fixture(scope="module")
def quarantine_run(corpus, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("quarantine")
    rc, stderr, peak = _run_measured(_manifest(folder, list(corpus.values())))
    assert rc == 0, stderr
    release = folder / "out" / "hostile" / "1.0.0"
    return {
        "stderr": stderr,
        "peak": peak,
        "stats": orjson.loads((release / "stats.json").read_bytes()),
        "quarantined": pq.read_table(release / "ledger" / "quarantine.parquet").to_pylist(),
        "release": release,
    }


def test_quarantine_run_of_every_kind_completes_in_bounded_memory(quarantine_run):
    assert "Traceback" not in quarantine_run["stderr"]
    assert (quarantine_run["release"] / "lock.json").exists()
    assert not (quarantine_run["release"] / INCOMPLETE).exists()
    assert quarantine_run["peak"] < PEAK_RSS_BOUND, quarantine_run["peak"]


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_quarantine_mode_counts_each_kind(quarantine_run, case):
    stats = quarantine_run["stats"]["sources"][case.kind]
    assert stats["read"] == stats["kept_documents"] + stats["rejected"] + stats["quarantined"], stats
    expected = {case.reason: 1} if case.reason else {}
    assert stats["quarantine_reasons"] == expected
    rows = [
        (r["reason"], Path(r["uri"]).parent.name)
        for r in quarantine_run["quarantined"]
        if r["source"] == case.kind
    ]
    assert rows == [(reason, case.kind) for reason in expected]
    assert {name: stats[name] for name in COUNTED} == {name: int(name == case.counted) for name in COUNTED}
    if case.kind == "warc_0_18":
        assert stats["kept_documents"] == 29


def _resident(field: str) -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) * 1024


@pytest.mark.parametrize("case", CASE_PARAMS)
def test_fail_mode_stops_in_one_line_and_releases_nothing_complete(corpus, case, tmp_path, capsys):
    manifest = _manifest(tmp_path, [{**corpus[case.kind], "on_error": "fail"}])
    # Resets this process's peak (VmHWM) to its current size, so earlier tests do not count.
    Path("/proc/self/clear_refs").write_text("5")
    before = _resident("VmRSS")
    rc = cli.main(["run", "--quiet", str(manifest), *FAST_BEAM])
    growth = _resident("VmHWM") - before
    stderr = capsys.readouterr().err
    release = tmp_path / "out" / "hostile" / "1.0.0"
    assert growth < PEAK_RSS_BOUND, growth
    if case.reason is None:
        assert (rc, stderr) == (0, "")
        assert (release / "lock.json").exists() and not (release / INCOMPLETE).exists()
        return
    assert rc == 2
    (line,) = stderr.splitlines()
    assert line.startswith("curation run: error: ") and case.reason in line, line
    assert f"/{case.kind}/" in line, "the error names the bad file"
    assert not (release / "lock.json").exists()
    assert not release.exists() or (release / INCOMPLETE).exists()
