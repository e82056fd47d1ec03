"""Adapter from the run to the dedupe library (filters/dedupe): the library's Beam stage over kept documents,
with its results shaped as the run's ledger rows and verdict records (kept with its cluster, or removed as a
duplicate; repeated paragraphs as span edits)."""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from curation.document import Rejection
from curation.stages.verdicts import EDIT, KEPT, REJECTED
from filters.dedupe.config import DedupeConfig
from filters.dedupe.transforms import STAGE, Deduplicate


def _span_only(r: Rejection) -> Rejection:
    """A paragraph removal cuts text but keeps the document: flagged so it is not counted as a drop."""
    return dataclasses.replace(r, detail={**(r.detail or {}), "span_only": True})


def deduplicate_stage(kept_batches, config: DedupeConfig, work_dir: str):
    """(ledger rows, verdict records keyed by (source, id)) of the dedupe stage, each as a tuple of
    PCollections that the caller writes to runs apart (a Flatten would make the local runner hold them)."""
    result = kept_batches | "Deduplicate" >> Deduplicate(config, work_dir)
    said = [
        result.clusters | "KeptWithCluster" >> beam.MapTuple(lambda key, cluster: (key, (STAGE, KEPT, cluster))),
        *(
            removed
            | f"RemovedAsDuplicate{i}" >> beam.Map(lambda r: ((r.source, r.doc_id), (STAGE, REJECTED, r.to_dict())))
            for i, removed in enumerate(result.rejections)
        ),
    ]
    ledger = list(result.rejections)
    if result.paragraph_edits is not None:
        ledger.append(result.span_rejections | "MarkParagraphRowsSpanOnly" >> beam.Map(_span_only))
        said.append(
            result.paragraph_edits
            | "ParagraphCuts"
            >> beam.MapTuple(lambda key, spans: (key, (STAGE, EDIT, {"paragraph": [[int(s), int(e)] for s, e in spans]})))
        )
    return tuple(ledger), tuple(said)
