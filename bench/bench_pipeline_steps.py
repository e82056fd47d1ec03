"""The size of each pipeline of a `curation run`: the Beam steps (leaf transforms) the launcher builds and
translates, and the fused stages the local runner makes of them and runs one by one. Every step costs the
launcher its construction and translation, every stage a bundle; on a tiny input that is most of a phase.

    python bench/bench_pipeline_steps.py [--manifest MANIFEST] [-- BEAM OPTIONS, e.g. --direct_num_workers=2]

Without MANIFEST: the one-document run of bench_fixed_cost.py (stage one's recipe), into a scratch folder;
a MANIFEST runs as it says, into its own output. Prints one line per pipeline, named by its top-level
transforms.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_REPO = Path(__file__).resolve().parents[1]

# Run in the child: the CLI, with Beam's Pipeline.run and the local runner's fusion wrapped to count.
_CHILD = """
import json, os, sys
import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import translations
out = open(os.environ["STEPS_OUT"], "a")
run, fuse = beam.Pipeline.run, translations.create_and_optimize_stages
def counted_run(self, *args, **kwargs):
    proto = self.to_runner_api()
    leaves = [t for t in proto.components.transforms.values() if not t.subtransforms]
    (root,) = proto.root_transform_ids
    top = [proto.components.transforms[t].unique_name for t in proto.components.transforms[root].subtransforms]
    out.write(json.dumps({"pipeline": top, "steps": len(leaves)}) + "\\n"); out.flush()
    return run(self, *args, **kwargs)
def counted_fuse(*args, **kwargs):
    result = fuse(*args, **kwargs)
    out.write(json.dumps({"stages": len(result[1])}) + "\\n"); out.flush()
    return result
beam.Pipeline.run, translations.create_and_optimize_stages = counted_run, counted_fuse
from curation.cli import entry
entry()
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", help="a manifest (default: bench_fixed_cost.py's one document)")
    parser.add_argument("beam_args", nargs="*", help="Beam options (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        if args.manifest:
            manifest = Path(args.manifest).resolve()
        else:
            sys.path.insert(0, str(_REPO / "bench"))
            from bench_fixed_cost import one_document_manifest

            manifest = one_document_manifest(folder, "out")
        counts = folder / "steps.jsonl"
        env = dict(os.environ, STEPS_OUT=str(counts), PYTHONPATH=str(_REPO))
        cmd = [sys.executable, "-c", _CHILD, "run", str(manifest), "--quiet", *args.beam_args]
        subprocess.run(cmd, cwd=manifest.parent, env=env, check=True, stdout=subprocess.DEVNULL)
        pipeline = None
        for line in counts.read_text().splitlines():
            row = json.loads(line)
            if "pipeline" in row:
                pipeline = row
            else:
                print(f"{', '.join(pipeline['pipeline'])}: {pipeline['steps']} steps, {row['stages']} fused stages")


if __name__ == "__main__":
    main()
