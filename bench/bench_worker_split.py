"""How a `curation run`'s bundles spread over its local workers (issue #17's 2-worker goal): runs the command
given after `--` with a hook in every Python process it starts (a `sitecustomize` on PYTHONPATH) that records
each bundle a worker processes: its process, start, end, CPU seconds of that process meanwhile and the ParDo
steps of its stage. Prints the bundles that took at least --min-seconds, then the CPU of the bundles per
worker process (a pipeline's workers are new processes, so each pipeline shows its own pair). By hand:

    python bench/bench_worker_split.py -- python -m curation.cli run MANIFEST --direct_num_workers 2
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

HOOK = """
import os
if os.environ.get("BUNDLE_LOG"):
    import importlib.abc, importlib.util, json, sys, time

    def _record(process_bundle):
        def recorded(self, *args, **kwargs):
            start, cpu = time.time(), time.process_time()
            try:
                return process_bundle(self, *args, **kwargs)
            finally:
                steps = [t.unique_name for t in self.process_bundle_descriptor.transforms.values()
                         if t.spec.urn == "beam:transform:pardo:v1"]
                with open(os.environ["BUNDLE_LOG"], "a") as log:
                    log.write(json.dumps({"pid": os.getpid(), "start": start, "end": time.time(),
                                          "cpu": time.process_time() - cpu, "steps": steps}) + "\\n")
        return recorded

    class _Hook(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "apache_beam.runners.worker.bundle_processor":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            load = spec.loader.exec_module

            def exec_module(module):
                load(module)
                module.BundleProcessor.process_bundle = _record(module.BundleProcessor.process_bundle)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _Hook())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--min-seconds", type=float, default=1.0, help="list bundles at least this long (wall)"
    )
    parser.add_argument("command", nargs=argparse.REMAINDER, help="after --: the command to run")
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    with tempfile.TemporaryDirectory() as hook_dir:
        Path(hook_dir, "sitecustomize.py").write_text(HOOK)
        log = Path(hook_dir, "bundles.jsonl")
        path = os.pathsep.join([str(REPO), hook_dir, os.environ.get("PYTHONPATH", "")])
        started = time.time()
        subprocess.run(
            command, check=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=path, BUNDLE_LOG=str(log))
        )
        bundles = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    pids = sorted({b["pid"] for b in bundles})
    per_worker: collections.Counter[int] = collections.Counter()
    print("start s  end s  CPU s  worker  steps")
    for b in sorted(bundles, key=lambda b: b["start"]):
        per_worker[pids.index(b["pid"])] += b["cpu"]
        if b["end"] - b["start"] >= args.min_seconds:
            steps = ", ".join(s.rsplit("/", 1)[-1] for s in b["steps"])
            times = f"{b['start'] - started:7.1f} {b['end'] - started:6.1f} {b['cpu']:6.2f}"
            print(f"{times}  {pids.index(b['pid']):6d}  {steps[:120]}")
    print(
        "bundle CPU s per worker process:",
        ", ".join(f"{w}: {cpu:.2f}" for w, cpu in sorted(per_worker.items())),
    )
    print(f"{len(bundles)} bundles", file=sys.stderr)


if __name__ == "__main__":
    main()
