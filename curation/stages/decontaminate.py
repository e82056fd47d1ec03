"""Adapter from the run to the decontamination library (filters/decontaminate): eval sets resolved against
the manifest, the n-gram index built once per run (named by its content hash), the Beam stage over kept
documents, and the per-benchmark report written with the outputs."""

from __future__ import annotations

import dataclasses
from typing import Any

import apache_beam as beam

from curation import storage
from curation.document import Document, Rejection, base_id
from curation.stages.verdicts import EDIT, KEPT, REJECTED
from filters.decontaminate.actions import CONTAMINATED_SPAN, STAGE
from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.detect import Match
from filters.decontaminate.evalsets import resolve_benchmarks
from filters.decontaminate.index import DecontaminationIndex, build_index, index_digest
from filters.decontaminate.report import DocumentMatch, write_report
from filters.decontaminate.transforms import DOCUMENTS, EDITS, MATCHES, REJECTIONS, Decontaminate


def decontamination_identity(config: DecontaminateConfig | None, loaded) -> Any:
    """What the decisions depend on: the config and, through the index digest, every eval file's content."""
    if config is None:
        return None
    return {"config": config, "index": index_digest(config, loaded.path.parent, loaded.relocated)}


def eval_files(config: DecontaminateConfig | None, loaded) -> list[str]:
    if config is None:
        return []
    return sorted({p for b in resolve_benchmarks(config, loaded.path.parent, loaded.relocated) for p in b.paths})


def index_path(ctx) -> str:
    """The index in this user's cache, shared by every run on the machine; for an output on S3, its copy
    under the output's `_cache/`, which workers that share only the store can read."""
    on_s3 = storage.is_s3(ctx.layout.root)
    path, _ = build_index(
        ctx.manifest.decontaminate,
        ctx.loaded.path.parent,
        ctx.layout.cached("decon-index") if on_s3 else None,
        ctx.loaded.relocated,
        warn=ctx.log,
    )
    return path


def _mark_span_rows(r: Rejection) -> Rejection:
    """A removed span cuts text but keeps the rest of the document: flagged so it is not counted as a drop."""
    if r.reason != CONTAMINATED_SPAN:
        return r
    return dataclasses.replace(r, detail={**(r.detail or {}), "span_only": True})


def match_record(m: DocumentMatch) -> dict[str, Any]:
    return {"source": m.source, "doc_id": m.doc_id, "excerpt": m.excerpt, **m.match.to_dict()}


def _survivors(batch: list[Document]) -> list[tuple[tuple[str, str], tuple]]:
    """A kept verdict for each document that came out of decontamination, whole or as pieces."""
    keys = dict.fromkeys((d.source, base_id(d.id)) for d in batch)
    return [(key, (STAGE, KEPT, {})) for key in keys]


def decontaminate_stage(kept_batches, config: DecontaminateConfig, ctx, work_dir: str):
    """(ledger rows, contamination matches, verdict records keyed by (source, id)) of decontamination, the
    verdict records as a tuple of PCollections that the caller writes to runs apart (a Flatten would make the
    local runner hold them); `work_dir` is decide's scratch."""
    result = kept_batches | "Decontaminate" >> Decontaminate(config, index_path(ctx), work_dir)
    ledger = result[REJECTIONS] | "MarkSpanRows" >> beam.Map(_mark_span_rows)
    said = (
        result[DOCUMENTS] | "KeptAfterDecontamination" >> beam.FlatMap(_survivors),
        result[REJECTIONS]
        | "DroppedAsContaminated"
        >> beam.FlatMap(
            lambda r: [] if r.reason == CONTAMINATED_SPAN else [((r.source, r.doc_id), (STAGE, REJECTED, r.to_dict()))]
        ),
        result[EDITS]
        | "CutSpans"
        >> beam.MapTuple(
            lambda key, cuts: (
                key,
                (STAGE, EDIT, {"decontaminate": [[int(s), int(e)] for s, e in cuts], "min_piece_chars": config.min_piece_chars}),
            )
        ),
    )
    matches = result[MATCHES] | "AsMatchRecords" >> beam.Map(match_record)
    return ledger, matches, said


def write_decontamination_report(ctx, matches: list[dict[str, Any]]) -> None:
    config = ctx.manifest.decontaminate
    if config is None:
        return
    items_indexed = DecontaminationIndex.read_meta(index_path(ctx))["items_indexed"]
    found = [
        DocumentMatch(m["source"], m["doc_id"], Match(m["benchmark"], m["item_id"], m["score"], *m["span"]), m["excerpt"])
        for m in matches
    ]
    write_report(found, ctx.layout.decontamination_dir, items_indexed)
