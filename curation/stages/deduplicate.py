"""Adapter from the run to the dedupe library (filters/dedupe): the library's Beam stage over kept
documents, with its results shaped as the run's decisions (whole-document rejections, clusters, span edits)."""

from __future__ import annotations

import dataclasses

import apache_beam as beam

from curation.document import Rejection
from filters.dedupe.config import DedupeConfig
from filters.dedupe.transforms import Deduplicate


def _span_only(r: Rejection) -> Rejection:
    """A paragraph removal cuts text but keeps the document: flagged so it is not counted as a drop."""
    return dataclasses.replace(r, detail={**(r.detail or {}), "span_only": True})


def deduplicate_stage(kept_batches, config: DedupeConfig, work_dir: str):
    result = kept_batches | "Deduplicate" >> Deduplicate(config, work_dir)
    span_rows = result.span_rejections | "MarkParagraphRowsSpanOnly" >> beam.Map(_span_only)
    rejections = (result.rejections, span_rows) | "DedupeLedgerRows" >> beam.Flatten()
    edits = result.paragraph_edits | "AsParagraphEdits" >> beam.MapTuple(
        lambda key, spans: (key, {"paragraph": [[int(s), int(e)] for s, e in spans]})
    )
    return rejections, result.clusters, edits
