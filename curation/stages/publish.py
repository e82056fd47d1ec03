"""Publishing the release. Per source, the kept documents (after every decision and edit, with their
attributes and provenance) in input order, as rolling Dolma-style files: written by the mix's pipeline beside
the shards (curation/stages/mix.py), since they need only the token files. In the same pipeline, the
ledger and the counts stats.json takes from it (curation/stages/ledger.py); the audit index over the ledger,
those documents, the pools and the shards (curation/stages/audit_index.py); and the checksums of all of these
(curation/stages/checksums.py). A step that reads files another step writes waits for that step's output
as a side input, so the end of a run costs one pipeline to build, translate and start; the launcher reads
back the counts and the checksums, small files whatever the corpus (issue #12)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import orjson

from curation import storage
from curation.lock import HASHED_ON_WORKERS
from curation.stages.audit_index import BuildAuditIndex, audit_jobs, audit_work_dir
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


class ReleaseSteps:
    """The ledger, the audit index and the checksums of every output written so far
    (curation.lock.HASHED_ON_WORKERS), as steps of the mix's pipeline (curation.stages.mix.mix_and_write):
    the index and the checksums wait for the files the mix writes, the ledger for nothing, and the run
    builds, translates and starts one pipeline after tokenizing, not two."""

    def __init__(self, ctx, pools, decisions_dir: str, token_files: list[TokenFile]):
        self._ctx = ctx
        self._pools = pools
        self._decisions_dir = decisions_dir
        self._token_files = token_files
        self.scratch = (ledger_work_dir(ctx), audit_work_dir(ctx.layout.root), checksums_work_dir(ctx))

    def build(self, p: beam.Pipeline, written: beam.PCollection) -> None:
        """Adds the steps to `p`; `written` is the mix's collection of written shards and documents."""
        root = self._ctx.layout.root
        pool_uris = [pool.documents_uri for pool in self._pools]
        ledger = p | "Ledger" >> WriteLedger(self._ctx, self._pools, self._decisions_dir, self._token_files)
        indexed = (
            p
            | "Start" >> beam.Create([None])
            | "ListIndexedFiles"
            >> beam.FlatMap(lambda _, _ledger, _written: audit_jobs(root, pool_uris), beam.pvalue.AsList(ledger), beam.pvalue.AsList(written))
            | "AuditIndex" >> BuildAuditIndex(root)
        )
        (
            p
            | "ListPatterns" >> beam.Create(HASHED_ON_WORKERS)
            | "OnceIndexed" >> beam.Map(lambda pattern, _indexed: pattern, beam.pvalue.AsList(indexed))
            | "Checksums" >> ChecksumOutputs(root, self.scratch[2])
        )

    def read(self) -> Published:
        """What the steps wrote for the launcher, once the pipeline has run."""
        return Published(read_counts(self.scratch[0]), read_entries(self.scratch[2]))


@contextmanager
def release_steps(ctx, pools, decisions_dir: str, token_files: list[TokenFile]) -> Iterator[ReleaseSteps]:
    """The release's steps, with their scratch folders empty before and removed after, however it ends."""
    steps = ReleaseSteps(ctx, pools, decisions_dir, token_files)
    for folder in steps.scratch:
        storage.remove_tree(folder)
    try:
        yield steps
    finally:
        for folder in steps.scratch:
            storage.remove_tree(folder)
