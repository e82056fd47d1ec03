"""Publishing the release. Per source, the kept documents (after every decision and edit, with their
attributes and provenance) in input order, as rolling Dolma-style files: written by the mix's pipeline beside
the shards (curation/stages/mix.py), since they need only the token files. Then the run's last pipeline: the
ledger and the counts stats.json takes from it (curation/stages/ledger.py); the audit index over the ledger,
those documents, the pools and the shards (curation/stages/audit_index.py); and the checksums of all of these
(curation/stages/checksums.py). A step that reads files another step writes waits for that step's output
as a side input, so the release costs one pipeline to build, translate and start, not three; the launcher
reads back the counts and the checksums, small files whatever the corpus (issue #12)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import orjson

from curation import storage
from curation.engine import pipeline_options, run_pipeline
from curation.lock import HASHED_ON_WORKERS
from curation.stages.audit_index import BuildAuditIndex, audit_jobs, audit_work_dir, shard_index_files
from curation.stages.checksums import ChecksumOutputs, checksums_work_dir, read_entries
from curation.stages.ledger import WriteLedger, ledger_work_dir, read_counts
from curation.stages.tokenize import TokenFile
from curation.writers import DocumentWriter


def marker(markers_dir: str, source: str) -> str:
    return storage.join(markers_dir, f"{source}.json")


@dataclass(frozen=True)
class DocumentsJob:
    """One source's curated documents to publish: its token files (whose documents files hold them, in
    input order) and where they go. Written on a worker by `write_source_documents`."""

    source: str
    files: list[TokenFile]
    out_dir: str
    markers_dir: str
    format: str
    target_bytes: int


def documents_jobs(ctx, token_files: list[TokenFile]) -> list[DocumentsJob]:
    """A job per source whose documents are not published yet (its marker says they are)."""
    output = ctx.manifest.output
    if not output.write_documents:
        return []
    by_source: dict[str, list[TokenFile]] = {name: [] for name in ctx.sources}
    for tf in token_files:
        by_source[tf.source].append(tf)
    markers_dir = ctx.layout.documents_markers_dir
    jobs = [
        DocumentsJob(s, fs, ctx.layout.documents_dir, markers_dir, output.documents_format, output.documents_target_bytes)
        for s, fs in sorted(by_source.items())
        if not storage.exists(marker(markers_dir, s))
    ]
    if jobs:
        ctx.log(f"[publish] curated documents of {len(jobs)} sources")
    return jobs


def write_source_documents(job: DocumentsJob) -> list[str]:
    """A source's documents as rolling files, then its marker; returns the files written."""
    folder = storage.join(job.out_dir, job.source)
    with DocumentWriter(storage.join(folder, "part"), job.format, job.target_bytes) as writer:
        for tf in sorted(job.files, key=lambda t: t.input_ordinal):
            with storage.open_decompressed(tf.documents_uri) as f:
                for line in f:
                    writer.write(orjson.loads(line))
    written = writer.close()
    with storage.atomic_write(marker(job.markers_dir, job.source)) as f:
        f.write(orjson.dumps({"files": [w.rsplit("/", 1)[-1] for w in written]}))
    return written


@dataclass(frozen=True)
class Published:
    counts: dict[str, Any]  # what stats.json takes from the ledger (curation/stages/ledger.py)
    outputs: list[dict[str, Any]]  # the lock's entries of the files HASHED_ON_WORKERS, sorted by path


def publish_release(ctx, pools, decisions_dir: str, token_files: list[TokenFile]) -> Published:
    """Write the ledger and the audit index, then hash every output written so far
    (curation.lock.HASHED_ON_WORKERS), in one pipeline whose local workers are capped by the input files."""
    root = ctx.layout.root
    pool_uris = [p.documents_uri for p in pools]
    # The shards are written by the mix, before this pipeline: listed here, a record per shard.
    shard_files = shard_index_files(root)
    scratch = (ledger_work_dir(ctx), audit_work_dir(root), checksums_work_dir(ctx))
    for folder in scratch:
        storage.remove_tree(folder)

    def build(p):
        ledger = p | "Ledger" >> WriteLedger(ctx, pools, decisions_dir, token_files)
        indexed = (
            p
            | "Start" >> beam.Create([None])
            | "ListIndexedFiles" >> beam.FlatMap(lambda _, _ledger: audit_jobs(root, pool_uris, shard_files), beam.pvalue.AsList(ledger))
            | "AuditIndex" >> BuildAuditIndex(root, shard_files)
        )
        return (
            p
            | "ListPatterns" >> beam.Create(HASHED_ON_WORKERS)
            | "OnceIndexed" >> beam.Map(lambda pattern, _indexed: pattern, beam.pvalue.AsList(indexed))
            | "Checksums" >> ChecksumOutputs(root, scratch[2])
        )

    try:
        run_pipeline(pipeline_options(ctx.beam_args, max(1, len(token_files))), build, log_path=ctx.worker_log("publish"))
        return Published(read_counts(scratch[0]), read_entries(scratch[2]))
    finally:
        for folder in scratch:
            storage.remove_tree(folder)
