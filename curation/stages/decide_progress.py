"""Decide's progress, seen from the driver like every phase's (curation/progress.py): each corpus-wide step
(duplicate ids, quality, dedupe, decontamination) writes one marker in decide's scratch once every record it
says is out, and each pool's verdict counts mark the last step, so the bar moves through decide on any runner.
One small file per step: the requests do not grow with documents, and the markers go with the scratch."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from curation import storage
from curation.chain import QUALITY_STAGE
from curation.stages.verdicts import counts_uri
from filters.decontaminate.actions import STAGE as DECONTAMINATION_STAGE
from filters.dedupe.transforms import STAGE as DEDUPE_STAGE
from filters.dedupe.transforms import labelled

IDS_STEP = "ids"


def decide_steps(manifest) -> list[str]:
    """The steps decide runs for `manifest`, in order, before the verdicts."""
    return [
        IDS_STEP,
        QUALITY_STAGE,
        *([DEDUPE_STAGE] if manifest.dedupe is not None else []),
        *([DECONTAMINATION_STAGE] if manifest.decontaminate is not None else []),
    ]


def step_marker_uri(work_dir: str, step: str) -> str:
    return storage.join(work_dir, "progress", f"{step}.done")


def _write_marker(_, uri: str, *bundle_counts: list[int]) -> None:
    with storage.atomic_write(uri) as f:
        f.write(str(sum(map(sum, bundle_counts))).encode())


class _CountPerBundle(beam.DoFn):
    """One count per bundle that saw records: fused into the step that makes them, so nothing else travels."""

    def start_bundle(self):
        self._count = 0

    def process(self, _):
        self._count += 1

    def finish_bundle(self):
        if self._count:
            yield GlobalWindows.windowed_value(self._count)


class MarkStepDone(beam.PTransform):
    """Writes `step`'s marker once the last of its records (any PCollection, possibly empty, or a tuple of
    them, counted apart since the local runner would hold a Flatten's records) is produced: each bundle's
    count reaches one write as a side input, which waits for every bundle. Beam's global Count would add
    nine steps per input (a default for empty input, a shuffle) to build, translate and run."""

    def __init__(self, work_dir: str, step: str):
        super().__init__()
        self._uri = step_marker_uri(work_dir, step)

    def expand(self, records):
        inputs = labelled(records)
        counts = [beam.pvalue.AsList(pcoll | f"Count{label}" >> beam.ParDo(_CountPerBundle())) for label, pcoll in inputs]
        return inputs[0][1].pipeline | "Once" >> beam.Impulse() | "WriteMarker" >> beam.Map(_write_marker, self._uri, *counts)


def finished_parts(folder: str, work_dir: str, steps: list[str], pool_digests: list[str]) -> int:
    """How many of decide's len(steps) + len(pool_digests) parts are done: step markers, then pool verdicts."""
    done_steps = sum(storage.exists(step_marker_uri(work_dir, s)) for s in steps)
    return done_steps + sum(storage.exists(counts_uri(folder, d)) for d in pool_digests)
