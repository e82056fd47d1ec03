"""Phase four: sample each source to its token budget, put every selected document (and repetition) in
one seeded order, cut the order into shards (on workers: `curation.stages.mix_plan`), and write the shards
in parallel by copying token ranges from the token caches, each from its plan file, beside each source's
published documents."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any, Callable

import apache_beam as beam
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from curation import storage
from curation.engine import SpreadOverWorkers, pipeline_options, run_pipeline
from curation.stages.mix_plan import PlanMix, ShardPlan, check_feasible, plan_uri, read_plan, set_up_mix
from curation.stages.publish import DocumentsJob, documents_jobs, marker, write_source_documents
from curation.stages.tokenize import DocumentTokenizer, TokenFile
from mixes import shards
from mixes.manifest import Manifest

# Reading a gap this small costs less than another request; a read holds at most MAX_READ_BYTES in memory,
# beside the shard being gathered.
MAX_GAP_BYTES = 1 << 20
MAX_READ_BYTES = 64 << 20


@dataclass(frozen=True)
class DocRef:
    """Where a kept document's tokens are: token file index, start and count, plus what the index records."""

    file: int
    start: int
    n_tokens: int
    id: str
    source: str
    uri: str | None
    line: int | None
    offset: int | None


@dataclass
class MixResult:
    per_source: dict[str, dict[str, Any]] = field(default_factory=dict)
    shards: list[dict[str, Any]] = field(default_factory=list)


def check_budgets_from_text_bytes(ctx, pools) -> None:
    """Fail before tokenizing when a source cannot meet its budget even if every UTF-8 byte of its text
    became a token (byte-level BPE never does worse), plus one marker token per document."""
    available: dict[str, int] = {name: 0 for name in ctx.sources}
    for pool in pools:
        available[pool.source] += pool.text_bytes + (pool.read - pool.quarantined) * 2
    check_feasible(ctx.manifest, available, "at most (its pooled text's bytes as tokens, before any filter)")


@dataclass
class TokenRead:
    """One read of tokens [start, end) from one token file, and the document copies it serves, each as
    (start in the file, token count, offset in the shard)."""

    file: int
    start: int
    end: int
    copies: list[tuple[int, int, int]]


def plan_reads(items: list[tuple[DocRef, int]], max_gap_tokens: int, max_read_tokens: int) -> list[TokenRead]:
    """The reads that gather a shard's document copies: sorted by (token file, start), a copy joins the read
    before it when the gap between them is under max_gap_tokens and the read stays within max_read_tokens
    (a longer document is a read of its own). Repeated copies share their read."""
    placed = []
    offset = 0
    for ref, _ in items:
        placed.append((ref.file, ref.start, ref.n_tokens, offset))
        offset += ref.n_tokens
    reads: list[TokenRead] = []
    for file, start, n_tokens, offset in sorted(placed):
        end = start + n_tokens
        last = reads[-1] if reads else None
        if last and last.file == file and start - last.end < max_gap_tokens and max(last.end, end) - last.start <= max_read_tokens:
            last.end = max(last.end, end)
            last.copies.append((start, n_tokens, offset))
        else:
            reads.append(TokenRead(file, start, end, [(start, n_tokens, offset)]))
    return reads


def gather_shard_tokens(items: list[tuple[DocRef, int]], token_files: list[TokenFile], dtype: np.dtype) -> np.ndarray:
    """A shard's tokens in its planned order, read from the token caches (local or S3) by a bounded number of
    ranged reads rather than one per document: memory is the shard plus one read."""
    itemsize = np.dtype(dtype).itemsize
    reads = plan_reads(items, MAX_GAP_BYTES // itemsize, MAX_READ_BYTES // itemsize)
    gathered = np.empty(sum(ref.n_tokens for ref, _ in items), dtype)
    for file, file_reads in itertools.groupby(reads, key=lambda read: read.file):
        tf = token_files[file]
        with shards.StoredTokens(tf.tokens_uri, tf.dtype, tf.tokens) as tokens:
            for read in file_reads:
                chunk = tokens[read.start : read.end]
                for start, n_tokens, offset in read.copies:
                    gathered[offset : offset + n_tokens] = chunk[start - read.start : start - read.start + n_tokens]
    return gathered


_SHARD_PLAN_SCHEMA = pa.schema(
    [
        ("file", pa.int32()),
        ("start", pa.int64()),
        ("n_tokens", pa.int64()),
        ("id", pa.string()),
        ("source", pa.string()),
        ("uri", pa.string()),
        ("line", pa.int64()),
        ("offset", pa.int64()),
        ("repetition", pa.int32()),
    ]
)


def write_shard_plan(uri: str, items: list[tuple[DocRef, int]]) -> None:
    """One shard's planned document copies, in order, for the worker that writes it: the job graph then
    carries a file name per shard instead of every document."""
    columns = {name: [getattr(ref, name) for ref, _ in items] for name in _SHARD_PLAN_SCHEMA.names[:-1]}
    columns["repetition"] = [repetition for _, repetition in items]
    with storage.atomic_write(uri) as f:
        pq.write_table(pa.table(columns, schema=_SHARD_PLAN_SCHEMA), f, compression="zstd")


def read_shard_plan(uri: str) -> list[tuple[DocRef, int]]:
    with storage.open_seekable(uri) as f:
        columns = pq.read_table(f).to_pydict()
    repetitions = columns.pop("repetition")
    return list(zip(itertools.starmap(DocRef, zip(*columns.values())), repetitions))


def shard_meta(tokenizer_path: str, m: Manifest, manifest_sha256: str) -> shards.ShardMeta:
    """What every shard of the mix records: loading the tokenizer for it takes a few tenths of a second, so
    it is done by the worker that writes shards, not by the launcher between pipelines."""
    tokenizer = DocumentTokenizer(tokenizer_path, m.output)
    return shards.ShardMeta(
        dtype=tokenizer.dtype.name,
        vocab_size=tokenizer.tokenizer.vocab_size,
        tokenizer_sha256=tokenizer.sha256,
        eos_id=tokenizer.tokenizer.eos_id if m.output.eos == "append" else None,
        bos_id=tokenizer.tokenizer.bos_id if m.output.bos == "prepend" else None,
        manifest_name=m.name,
        manifest_version=m.version,
        manifest_sha256=manifest_sha256,
        format=m.output.format,
    )


def write_shard(out_dir: str, index: int, plan_uri: str, token_files: list[TokenFile], meta: shards.ShardMeta) -> None:
    items = read_shard_plan(plan_uri)
    tokens = gather_shard_tokens(items, token_files, np.dtype(meta.dtype))
    records = {
        "doc_id": [ref.id for ref, _ in items],
        "source": [ref.source for ref, _ in items],
        "repetition": [repetition for _, repetition in items],
        "uri": [ref.uri or "" for ref, _ in items],
        "line": [ref.line for ref, _ in items],
        "offset": [ref.offset for ref, _ in items],
    }
    with shards.ShardWriter(out_dir, index, meta) as writer:
        writer.add_documents(tokens, [ref.n_tokens for ref, _ in items], records)


class _WriteReleaseFileFn(beam.DoFn):
    """Writes a shard from its plan (a ShardPlan) or a source's published documents (a DocumentsJob). One
    step for both: Beam's local runner runs a pipeline's steps one after another, so a lone shard and a lone
    source written by two steps would each leave the other workers idle."""

    def __init__(self, ctx, token_files: list[TokenFile]):
        self._out_dir = ctx.layout.shards_dir
        self._token_files = token_files
        self._meta_from = (ctx.tokenizer_path, ctx.manifest, ctx.loaded.sha256)
        self._meta: shards.ShardMeta | None = None

    def process(self, job: ShardPlan | DocumentsJob):
        if isinstance(job, DocumentsJob):
            yield job.source, write_source_documents(job)
            return
        if self._meta is None:
            self._meta = shard_meta(*self._meta_from)
        write_shard(self._out_dir, job.index, job.uri, self._token_files, self._meta)
        yield job.index


def mix_and_write(
    ctx, token_files: list[TokenFile], then: Callable[[beam.Pipeline, beam.PCollection], None] | None = None, phase: str = "mix"
) -> MixResult:
    """In one pipeline: the mix's plan (curation.stages.mix_plan), then its shards, each written as soon as
    its plan is, beside the published documents of every source (curation.stages.publish). `then` adds
    steps of its own to the pipeline, given the collection of written files to wait for (the run adds the
    release's: curation.stages.publish.ReleaseSteps); `phase` names the pipeline's log and progress bar."""
    setup = set_up_mix(ctx, token_files)
    out_dir, shard_format = ctx.layout.shards_dir, ctx.manifest.output.format
    documents = documents_jobs(ctx, token_files)
    outputs = [marker(ctx.layout.documents_markers_dir, job.source) for job in documents]

    def build(p: beam.Pipeline) -> None:
        # A shard an interrupted run finished, exactly as planned, is kept.
        shard_jobs = p | "PlanMix" >> PlanMix(setup) | "NotWritten" >> beam.Filter(
            lambda plan: not shard_matches_plan(out_dir, plan.index, plan.documents, plan.tokens, shard_format)
        )
        source_jobs = p | "ListSources" >> beam.Create(documents)
        jobs = (shard_jobs, source_jobs) | "Jobs" >> beam.Flatten() | "Spread" >> SpreadOverWorkers()
        files = jobs | "WriteFiles" >> beam.ParDo(_WriteReleaseFileFn(ctx, token_files))
        if then is not None:
            then(p, files)

    def planned_shards() -> int:
        return next(i for i in itertools.count() if not storage.exists(plan_uri(setup.plans_dir, i)))

    def written() -> int:
        shards_written = sum(storage.exists(shard_sidecar_path(out_dir, i)) for i in range(planned_shards()))
        return shards_written + sum(storage.exists(o) for o in outputs)

    try:
        run_pipeline(
            pipeline_options(ctx.beam_args, max(1, len(token_files))),
            build,
            log_path=ctx.worker_log(phase),
            # The shards are counted as their plans are made.
            progress=(phase, lambda: len(outputs) + planned_shards(), written),
        )
        plan = read_plan(setup)
    finally:
        storage.remove_tree(setup.work_dir)
    ctx.log(f"[mix] {sum(documents for documents, _ in plan.shard_sizes)} documents in {len(plan.plan_uris)} shards")
    sidecars = [read_sidecar(shard_sidecar_path(out_dir, i)) for i in range(len(plan.plan_uris))]
    return MixResult(per_source=plan.per_source, shards=sidecars)


def read_sidecar(uri: str) -> dict[str, Any]:
    with storage.open_binary(uri) as f:
        return orjson.loads(f.read())


def shard_matches_plan(out_dir: str, index: int, documents: int, tokens: int, format: str) -> bool:
    """A finished shard from an interrupted run is kept only if it holds exactly the planned documents, in
    the planned format, with every file this code writes."""
    sidecar = shard_sidecar_path(out_dir, index)
    if not storage.exists(sidecar):
        return False
    written = read_sidecar(sidecar)
    return (
        written.get("format_version") == shards.SHARD_FORMAT_VERSION
        and written["format"] == format
        and written["documents"] == documents
        and written["tokens"] == tokens
    )


def shard_sidecar_path(out_dir: str, index: int) -> str:
    """A shard is finished when its sidecar exists: the writer renames it into place last."""
    return shards.ShardPaths.of(out_dir, index).sidecar
