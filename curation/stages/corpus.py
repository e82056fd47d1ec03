"""Phase two: every corpus-level decision in one Beam pipeline. Quality thresholds first (a document a
filter drops can never be kept as a duplicate's representative), then deduplication and decontamination
over the survivors, each shuffling compact records only; the small results are gathered and written,
sorted, to one content-addressed decisions folder."""

from __future__ import annotations

from typing import Any

import apache_beam as beam

from curation.digests import CODE_VERSION, digest
from curation.stages.curate import PoolFile
from curation.stages.decide import DecideQuality
from curation.stages.decisions import Decisions, write_decisions


def decisions_digest(manifest, sources: dict, pools: list[PoolFile], loaded) -> str:
    """Everything a decision depends on: the pools, every filter's full config, dedupe and decon settings."""
    from curation.stages.decontaminate import decontamination_identity

    return digest(
        CODE_VERSION,
        sorted(p.digest for p in pools),
        {name: s.filters for name, s in sorted(sources.items())},
        manifest.dedupe,
        decontamination_identity(manifest.decontaminate, loaded),
    )


class _WriteDecisionsFn(beam.DoFn):
    def __init__(self, folder: str):
        self._folder = folder

    def process(self, _, rejections, clusters, edits, matches):
        merged_edits: dict[Any, dict[str, Any]] = {}
        for key, edit in edits:
            slot = merged_edits.setdefault(key, {})
            for kind, value in edit.items():
                if isinstance(value, list):
                    slot.setdefault(kind, []).extend(value)
                else:
                    slot[kind] = value
        write_decisions(self._folder, Decisions(list(rejections), dict(clusters), merged_edits, list(matches)))
        yield self._folder


class DecideCorpus(beam.PTransform):
    """PoolFile records -> the run's decisions folder (written once, by one worker, sorted). `work_dir` is
    scratch for the stages that keep bulky intermediate data out of the runner (dedupe)."""

    def __init__(self, ctx, folder: str, work_dir: str):
        super().__init__()
        self._ctx = ctx
        self._folder = folder
        self._work_dir = work_dir

    def expand(self, pools):
        from curation.stages.decontaminate import decontaminate_stage
        from curation.stages.deduplicate import deduplicate_stage

        manifest = self._ctx.manifest
        kept_batches, quality_rejections = pools | "DecideQuality" >> DecideQuality(self._ctx.sources)
        p = pools.pipeline
        rejection_parts = [quality_rejections]
        cluster_parts, edit_parts, match_parts = [], [], []
        if manifest.dedupe is not None:
            rejections, clusters, edits = deduplicate_stage(kept_batches, manifest.dedupe, self._work_dir)
            rejection_parts.append(rejections)
            cluster_parts.append(clusters)
            edit_parts.append(edits)
        if manifest.decontaminate is not None:
            rejections, edits, matches = decontaminate_stage(kept_batches, manifest.decontaminate, self._ctx)
            rejection_parts.append(rejections)
            edit_parts.append(edits)
            match_parts.append(matches)

        def gathered(parts, label):
            if not parts:
                return p | f"No{label}" >> beam.Create([])
            return tuple(parts) | f"All{label}" >> beam.Flatten()

        return (
            p
            | "One" >> beam.Create([None])
            | "WriteDecisions"
            >> beam.ParDo(
                _WriteDecisionsFn(self._folder),
                rejections=beam.pvalue.AsList(gathered(rejection_parts, "Rejections")),
                clusters=beam.pvalue.AsList(gathered(cluster_parts, "Clusters")),
                edits=beam.pvalue.AsList(gathered(edit_parts, "Edits")),
                matches=beam.pvalue.AsList(gathered(match_parts, "Matches")),
            )
        )

