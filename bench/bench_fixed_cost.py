"""The fixed cost of a run: CPU seconds of `curation run` on a one-document input, by phase.

The input is the first real document of data/demo/web through the stage-one recipe (manifests/stage1: the
web filter chain, exact and MinHash dedupe, decontamination against every ../shared benchmark of
manifests/evals/olmo-core-2024.yaml, OLMo 2's tokenizer). Each run writes a fresh output folder; the user
cache (CURATION_CACHE) is empty for the first run and kept for the next ones, so the first is a machine's
first run and the others what any later run on a new output costs. By hand:

    python bench/bench_fixed_cost.py [--runs 3] [-- BEAM OPTIONS, e.g. --direct_num_workers=1]

CPU is user + system of the launcher and every worker process it started and reaped (wait4's rusage).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

_REPO = Path(__file__).resolve().parents[1]

# Run in the child: the CLI as the `curation` command runs it, with each phase's CPU seconds (the launcher's own, and its reaped workers')
# printed as one JSON line on stderr at exit.
_CHILD = """
import atexit, contextlib, json, resource, sys
from curation import pipeline
phases = {}
def _cpu():
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return s.ru_utime + s.ru_stime, c.ru_utime + c.ru_stime
_wall_clock = pipeline.PhaseClock.__call__
@contextlib.contextmanager
def _clock(self, phase):
    before = _cpu()
    with _wall_clock(self, phase):
        yield
    after = _cpu()
    phases[phase] = {"launcher": after[0] - before[0], "workers": after[1] - before[1]}
pipeline.PhaseClock.__call__ = _clock
atexit.register(lambda: print("PHASES " + json.dumps(phases), file=sys.stderr))
from curation.cli import entry
entry()
"""


def one_document_manifest(folder: Path, output: str) -> Path:
    stage1 = yaml.safe_load((_REPO / "manifests/stage1/stage1.yaml").read_text())
    web = stage1["sources"][0]
    for spec in web["filters"]:
        for key, value in spec.items():
            if key.endswith("_file"):
                spec[key] = str((_REPO / "manifests/stage1" / value).resolve())
    with gzip.open(_REPO / "data/demo/web/c4-sample.01.json.gz", "rt") as f:
        (folder / "one.jsonl").write_text(f.readline())
    manifest = {
        "name": "one-document",
        "version": "1.0.0",
        "seed": 1,
        "description": "One real web document through the stage-one recipe.",
        "sources": [{"name": "web", "paths": ["one.jsonl"], "filters": web["filters"]}],
        "dedupe": {"exact": {"scope": "global"}, "minhash": {"scope": "global"}},
        "decontaminate": {
            "eval_files": [str(_REPO / "manifests/evals/olmo-core-2024.yaml")],
            "action": "remove_span",
        },
        "mix": {"target_tokens": 300, "sources": {"web": {"ratio": 1.0, "max_repetition": 1}}},
        "output": {
            "path": output,
            "tokenizer": str(_REPO / "tokenizers/allenai_dolma2.json"),
            "eos": "append",
            "special_tokens_in_text": "literal",
            "shard_tokens": 1000,
        },
    }
    path = folder / f"{output}.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def run_once(manifest: Path, cache: Path, beam_args: list[str]) -> dict:
    """One run of `manifest`; its CPU seconds in total and by phase."""
    env = dict(os.environ, CURATION_CACHE=str(cache), PYTHONPATH=str(_REPO))
    cmd = [sys.executable, "-c", _CHILD, "run", str(manifest), *beam_args]
    wall = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=manifest.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = proc.stderr.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        sys.exit(f"run failed:\n{stderr}")
    phases = json.loads(stderr.split("PHASES ", 1)[1].splitlines()[0])
    return {
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "wall_s": time.perf_counter() - wall,
        "phases": {k: round(v["launcher"] + v["workers"], 2) for k, v in phases.items()},
        "in_launcher": round(sum(v["launcher"] for v in phases.values()), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs in all; the first starts with an empty cache")
    parser.add_argument("beam_args", nargs="*", help="Beam options for every run (after --)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}; Beam options {args.beam_args or 'default'}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for i in range(args.runs):
            manifest = one_document_manifest(folder, f"out-{i}")  # a new output folder each time
            result = run_once(manifest, folder / "user-cache", args.beam_args)
            label = "empty cache" if i == 0 else "cache kept"
            print(
                f"run {i + 1} ({label}): {result['cpu_s']:.2f} CPU s, {result['wall_s']:.1f} wall s; "
                f"phases' CPU s {result['phases']}, of which in the launcher {result['in_launcher']}"
            )
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
