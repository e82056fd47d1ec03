"""Phase two: every corpus-level decision in one Beam pipeline. Duplicate ids are settled first, then quality
thresholds (a document a filter drops can never be kept as a duplicate's representative), then deduplication
and decontamination over the survivors, each shuffling compact records only. Every stage's word on every
document is joined into one verdict per pooled document and written per pool (verdicts.py); the small ledger
results (rejection rows, contamination matches, quarantined records) are gathered and written, sorted."""

from __future__ import annotations

import apache_beam as beam

from curation.chain import QUALITY_STAGE
from curation.digests import CODE_VERSION, digest
from curation.document import Rejection
from curation.stages.curate import PoolFile
from curation.stages.decide import DecideQuality
from curation.stages.decide_progress import IDS_STEP, MarkStepDone
from curation.stages.decisions import GATHERED, write_decisions
from curation.stages.ids import FindDuplicateIds
from curation.stages.sorted_runs import WriteSortedRunsFn
from curation.stages.verdicts import located_parts, pool_verdicts, write_pool_verdicts
from filters.decontaminate.actions import STAGE as DECONTAMINATION_STAGE
from filters.dedupe.transforms import STAGE as DEDUPE_STAGE
from filters.dedupe.transforms import CoGroupInRuns, GroupInRuns


def decisions_digest(manifest, sources: dict, pools: list[PoolFile], loaded) -> str:
    """Everything a decision depends on: the pools in input order (which decides the first of repeated ids),
    every filter's full config, the sources' id policies, dedupe and decontamination settings."""
    from curation.stages.decontaminate import decontamination_identity

    return digest(
        CODE_VERSION,
        [p.digest for p in pools],
        {name: (s.filters, s.ids) for name, s in sorted(sources.items())},
        manifest.dedupe,
        decontamination_identity(manifest.decontaminate, loaded),
    )


class _WriteDecisionsFn(beam.DoFn):
    def __init__(self, folder: str):
        self._folder = folder

    def process(self, _, *runs):
        write_decisions(self._folder, [run for kind in runs for run in kind])
        yield self._folder


def _rejection_row(r: Rejection) -> dict:
    return r.to_dict()


class _WritePoolVerdictsFn(beam.DoFn):
    """One pool's verdicts, checked to cover each of its documents exactly once, written in pool order."""

    def __init__(self, folder: str, stages: tuple[str, ...]):
        self._folder = folder
        self._stages = stages

    def process(self, keyed):
        _, joined = keyed
        (pool,) = joined["pool"]
        rows = pool_verdicts(pool.input_uri, pool.read - pool.quarantined, joined["part"], self._stages)
        yield write_pool_verdicts(self._folder, pool.digest, rows)


class DecideCorpus(beam.PTransform):
    """(ordinal, PoolFile) records in input order -> the run's decisions folder: one verdict file per pool and
    the ledger files. `work_dir` is scratch for the groupings that go through run files (dedupe's, the
    duplicate ids', the verdicts') and the batches decontamination sets aside."""

    def __init__(self, ctx, folder: str, work_dir: str, input_uris: list[str]):
        super().__init__()
        self._ctx = ctx
        self._folder = folder
        self._work_dir = work_dir
        self._input_uris = input_uris

    def expand(self, pools):
        from curation.stages.decontaminate import decontaminate_stage
        from curation.stages.deduplicate import deduplicate_stage

        manifest = self._ctx.manifest
        p = pools.pipeline
        duplicates = pools | "FindDuplicateIds" >> FindDuplicateIds(GroupInRuns(self._work_dir))
        quality = {"pool": pools, "duplicate": duplicates} | "DecideQuality" >> DecideQuality(
            self._ctx.sources, self._input_uris
        )
        # Per-document records of every stage go to run files each from its own PCollection: a Flatten of
        # several would make the local runner (which runs in the launcher) hold every one of them.
        stages, ledger_parts, said_parts, match_parts = [QUALITY_STAGE], [quality.rejections], [(quality.said,)], []
        if manifest.dedupe is not None:
            ledger, said = deduplicate_stage(quality.kept, manifest.dedupe, self._work_dir)
            stages.append(DEDUPE_STAGE)
            ledger_parts.extend(ledger)
            said_parts.append(said)
        if manifest.decontaminate is not None:
            ledger, matches, said = decontaminate_stage(quality.kept, manifest.decontaminate, self._ctx, self._work_dir)
            stages.append(DECONTAMINATION_STAGE)
            ledger_parts.append(ledger)
            said_parts.append(said)
            match_parts.append(matches)
        duplicates | "MarkIdsDone" >> MarkStepDone(self._work_dir, IDS_STEP)
        for stage, said in zip(stages, said_parts):
            said | f"Mark{stage.capitalize()}Done" >> MarkStepDone(self._work_dir, stage)

        located = (
            {"at": quality.located, "said": tuple(pcoll for said in said_parts for pcoll in said)}
            | "JoinVerdictsToDocuments" >> CoGroupInRuns(self._work_dir)
            | "LocateVerdicts" >> beam.FlatMapTuple(lambda key, g: located_parts(key, g["at"], g["said"]))
        )
        (
            {"pool": pools, "part": (located, quality.parts)}
            | "GroupVerdictsByPool" >> CoGroupInRuns(self._work_dir)
            | "WritePoolVerdicts" >> beam.ParDo(_WritePoolVerdictsFn(self._folder, tuple(stages)))
        )
        # Only the names of sorted run files reach the one task that writes the decisions, never the rows.
        sorted_runs = [
            (kind, f"{label}{i}", part, to_row)
            for kind, label, parts, to_row in (
                ("rejections", "SortRejections", ledger_parts, _rejection_row),
                ("matches", "SortMatches", match_parts, None),
                ("quarantined", "SortQuarantined", [quality.quarantined], None),
            )
            for i, part in enumerate(parts)
        ]
        runs = [
            beam.pvalue.AsList(part | label >> beam.ParDo(WriteSortedRunsFn(self._work_dir, kind, GATHERED[kind][1], to_row)))
            for kind, label, part, to_row in sorted_runs
        ]
        return p | "Once" >> beam.Impulse() | "WriteDecisions" >> beam.ParDo(_WriteDecisionsFn(self._folder), *runs)
