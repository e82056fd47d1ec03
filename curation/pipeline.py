"""The whole run, phase by phase, each phase one Beam pipeline whose outputs are content-addressed:

  CurateFiles (read, score, pool) -> DecideQuality -> Deduplicate / Decontaminate (compact shuffles)
  -> TokenizePools (apply decisions, tokenize once) -> the release: mix (sample, order, write shards and
  documents), ledger, audit index, checksums

A phase whose outputs already exist is skipped, so a killed run resumes where it stopped and ends with
the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable

import apache_beam as beam
import orjson

from curation import release_state, run_lock, storage
from curation.engine import pipeline_options, run_pipeline
from curation.errors import AccountingError, ReleaseConflictError
from curation.layout import RunLayout
from curation.preflight import check_files
from curation.stages.corpus import DecideCorpus, decisions_digest
from curation.stages.curate import CurateFiles, PoolFile, pool_digest, pool_meta_uri, read_pool_meta
from curation.stages.decide_progress import decide_steps, finished_parts
from curation.stages.decisions import decisions_complete, mark_complete
from curation.stages.tokenize import TokenFile, TokenizePools, tokenizer_sha256, tokens_digest
from curation.stages.verdicts import read_pool_counts
from filters.registry import FILE_KEYS
from mixes.manifest import LoadedManifest, Manifest, SourceConfig


@dataclass
class RunContext:
    loaded: LoadedManifest
    layout: RunLayout
    sources: dict[str, SourceConfig]
    inputs: list[tuple[str, str]]
    tokenizer_path: str
    beam_args: list[str] = field(default_factory=list)
    log: Callable[[str], None] = print
    # Per source, the symlinks its globs left out because they lead outside the glob's folder.
    skipped_symlinks: dict[str, int] = field(default_factory=dict)

    @property
    def manifest(self) -> Manifest:
        return self.loaded.manifest

    def worker_log(self, phase: str) -> str:
        """Where a phase's local worker processes log (remote runners keep their own logs): beside the
        products, or for an output on S3 in local scratch that `upload_logs` copies there."""
        if storage.is_s3(self.layout.root):
            return os.path.join(_scratch_logs(self.layout.root), f"{phase}.log")
        return self.layout.path("logs", f"{phase}.log")


def _scratch_logs(root: str) -> str:
    return storage.scratch_dir("logs", hashlib.sha256(root.encode()).hexdigest()[:16])


def upload_logs(ctx: RunContext) -> None:
    """An S3 output's logs, appended locally while its phases ran, put beside its products."""
    if not storage.is_s3(ctx.layout.root):
        return
    folder = _scratch_logs(ctx.layout.root)
    for name in sorted(os.listdir(folder)):
        storage.upload_file(os.path.join(folder, name), ctx.layout.path("logs", name))
    shutil.rmtree(folder, ignore_errors=True)


def resolved_source(loaded: LoadedManifest, source: SourceConfig) -> SourceConfig:
    """Paths in a source (inputs, filter models and lists) made absolute against the manifest's folder. Ids
    are made from inputs' recorded names, relative to that folder, so an id root becomes that folder as seen
    from the id root (curation.document.stable_id)."""
    filters = [{k: (loaded.resolve(v) if k in FILE_KEYS and isinstance(v, str) else v) for k, v in f.items()} for f in source.filters]
    id_root = source.id_root
    if id_root and not storage.is_s3(id_root):
        id_root = os.path.relpath(loaded.path.parent, loaded.absolute(id_root))
    return dataclasses.replace(source, paths=[loaded.resolve(p) for p in source.paths], filters=filters, id_root=id_root)


def prepare(loaded: LoadedManifest, beam_args: list[str], log: Callable[[str], None] = print) -> RunContext:
    m = loaded.manifest
    check_files(loaded)
    layout = RunLayout.for_manifest(loaded.output_folder, m.name, m.version)
    sources = {s.name: resolved_source(loaded, s) for s in m.sources}
    inputs = []
    skipped_symlinks = {}
    for s in sources.values():
        uris, outside_links = _source_files(s)
        inputs.extend((s.name, u) for u in uris)
        skipped_symlinks[s.name] = len(outside_links)
        if outside_links:
            log(
                f"[curate] source {s.name}: skipped {len(outside_links)} symlinks leading outside their glob's "
                f"folder (follow_symlinks: true reads them), e.g. {outside_links[0]}"
            )
    tokenizer = loaded.resolve(m.output.tokenizer)
    return RunContext(loaded, layout, sources, inputs, tokenizer, beam_args, log, skipped_symlinks)


def _source_files(source: SourceConfig) -> tuple[list[str], list[str]]:
    """A source's input files in order, each once, and the symlinks its globs left out."""
    uris: list[str] = []
    outside_links: list[str] = []
    for pattern in source.paths:
        listing = storage.list_inputs(pattern, follow_symlinks=source.follow_symlinks)
        uris.extend(u for u in listing.files if u not in uris)
        outside_links.extend(u for u in listing.outside_links if u not in outside_links)
    return uris, outside_links


PRODUCTS = ("shards", "documents", "documents_complete", "ledger", "decontamination", "audit", "stats.json", "card.md", "card.html")


def remove_unfinished_products(layout: RunLayout) -> None:
    """Delete what an unfinished run of another manifest wrote; the shared cache stays, since its names
    are digests of what each entry was made from."""
    for name in PRODUCTS:
        path = layout.path(name)
        storage.remove_tree(path)
        storage.remove(path)


def released_already(ctx: RunContext) -> bool:
    """A finished release of this very manifest: its outputs are final and a rerun changes nothing."""
    if not storage.exists(ctx.layout.lock_file) or not storage.exists(ctx.layout.release_file):
        return False
    with storage.open_binary(ctx.layout.release_file) as f:
        return orjson.loads(f.read())["manifest_sha256"] == ctx.loaded.sha256


def claim_release(ctx: RunContext) -> None:
    """A name and version belong to one manifest: refuse to write over an output made from another."""
    release = ctx.layout.release_file
    if storage.exists(release):
        with storage.open_binary(release) as f:
            claimed = orjson.loads(f.read())
        released = storage.exists(ctx.layout.lock_file)
        if claimed["manifest_sha256"] != ctx.loaded.sha256 and not released:
            # An unfinished run released nothing: a corrected manifest may take the version over, and the
            # content-addressed work of the earlier attempt is reused wherever it still applies.
            ctx.log(f"[release] {ctx.manifest.name} {ctx.manifest.version} was never finished; taking it over")
            remove_unfinished_products(ctx.layout)
        elif claimed["manifest_sha256"] != ctx.loaded.sha256:
            raise ReleaseConflictError(
                f"{ctx.layout.root} holds {ctx.manifest.name} {ctx.manifest.version} made from manifest "
                f"{claimed['manifest_sha256'][:12]}, not this one ({ctx.loaded.sha256[:12]}): a released version never "
                "changes, so give the changed manifest a new version"
            )
        else:
            return
    with storage.atomic_write(release) as f:
        f.write(orjson.dumps({"name": ctx.manifest.name, "version": ctx.manifest.version, "manifest_sha256": ctx.loaded.sha256}, option=orjson.OPT_INDENT_2))
    with storage.atomic_write(ctx.layout.manifest_copy) as f:
        with open(ctx.loaded.path, "rb") as src:
            f.write(src.read())


def curate(ctx: RunContext) -> list[PoolFile]:
    expected = [(name, uri, pool_digest(ctx.sources[name], uri, ctx.loaded.recorded(uri))) for name, uri in ctx.inputs]
    todo = [(name, uri, ctx.loaded.recorded(uri)) for name, uri, d in expected if read_pool_meta(ctx.layout, name, d) is None]
    ctx.log(f"[curate] {len(ctx.inputs)} input files, {len(ctx.inputs) - len(todo)} already pooled")
    if todo:
        metas = [pool_meta_uri(ctx.layout, name, d) for name, _, d in expected]
        run_pipeline(
            pipeline_options(ctx.beam_args, len(todo)),
            lambda p: p | "ListInputs" >> beam.Create(todo) | "CurateFiles" >> CurateFiles(ctx.sources, ctx.layout),
            log_path=ctx.worker_log("curate"),
            progress=("curate", len(metas), lambda: sum(storage.exists(m) for m in metas)),
        )
    pools = []
    for name, uri, d in expected:
        pool = read_pool_meta(ctx.layout, name, d)
        if pool is None:
            raise RuntimeError(f"curate finished without a pool for {uri}")
        pools.append(pool)
    return pools


def decide(ctx: RunContext, pools: list[PoolFile]) -> tuple[str, str]:
    d = decisions_digest(ctx.manifest, ctx.sources, pools, ctx.loaded)
    folder = ctx.layout.decisions_dir(d)
    if decisions_complete(folder):
        ctx.log("[decide] decisions already complete")
    else:
        ctx.log(f"[decide] quality thresholds, dedupe and decontamination over {len(pools)} pools")
        # Scratch for the groupings through run files; a crashed run's leftovers are never read.
        work_dir = ctx.layout.work_dir(d)
        storage.remove_tree(work_dir)
        steps, digests = decide_steps(ctx.manifest), [p.digest for p in pools]
        try:
            run_pipeline(
                pipeline_options(ctx.beam_args, len(pools)),
                lambda p: p
                | "ListPools" >> beam.Create(list(enumerate(pools)))
                | "DecideCorpus" >> DecideCorpus(ctx, folder, work_dir, [pool.input_uri for pool in pools]),
                log_path=ctx.worker_log("decide"),
                progress=("decide", len(steps) + len(pools), lambda: finished_parts(folder, work_dir, steps, digests)),
            )
        finally:
            storage.remove_tree(work_dir)
        check_verdicts_cover_pools(folder, pools)
        mark_complete(folder)
    return d, folder


def check_verdicts_cover_pools(folder: str, pools: list[PoolFile]) -> None:
    """Every pool has its verdict file, with one verdict per pooled document: the last line of defence
    against a runner that lost work, checked before anything downstream may use the decisions."""
    for pool in pools:
        counts = read_pool_counts(folder, pool.digest)
        documents = pool.read - pool.quarantined
        if counts is None or sum(counts.values()) != documents:
            found = "no verdicts" if counts is None else f"{sum(counts.values())} verdicts"
            raise AccountingError(
                f"decide: {found} for the {documents} documents of {pool.input_uri}; the runner lost work, "
                "nothing was published: run again"
            )


def tokenize(ctx: RunContext, pools: list[PoolFile], decisions_d: str, folder: str) -> list[TokenFile]:
    output = ctx.manifest.output
    sha = tokenizer_sha256(ctx.tokenizer_path)
    expected = [(i, p, tokens_digest(p, decisions_d, sha, output)) for i, p in enumerate(pools)]

    def meta(pool: PoolFile, d: str) -> str:
        return ctx.layout.tokens_prefix(pool.source, d) + ".meta.json"

    todo = [(i, p) for i, p, d in expected if not storage.exists(meta(p, d))]
    ctx.log(f"[tokenize] {len(pools)} pools, {len(pools) - len(todo)} already tokenized")
    if todo:
        metas = [meta(p, d) for _, p, d in expected]
        run_pipeline(
            pipeline_options(ctx.beam_args, len(todo)),
            lambda p: p
            | "ListPools" >> beam.Create(todo)
            | "TokenizePools" >> TokenizePools(folder, decisions_d, output, ctx.tokenizer_path, ctx.layout),
            log_path=ctx.worker_log("tokenize"),
            progress=("tokenize", len(metas), lambda: sum(storage.exists(m) for m in metas)),
        )
    files = []
    for _, pool, d in expected:
        with storage.open_binary(meta(pool, d)) as f:
            files.append(TokenFile.from_dict(orjson.loads(f.read())))
    return files


def run(loaded: LoadedManifest, beam_args: list[str], log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a manifest end to end; returns the run's stats (also written to stats.json). A second run on the
    same output is refused while this one holds the output's run lock."""
    ctx = prepare(loaded, beam_args, log)
    with run_lock.held(ctx.layout.run_lock_file, ctx.manifest.name, ctx.manifest.version, log):
        try:
            return run_locked(ctx)
        finally:
            upload_logs(ctx)


def run_locked(ctx: RunContext) -> dict[str, Any]:
    """The run, for a caller that holds the output's run lock (`curation regenerate` holds it longer)."""
    from curation.report import finish_run
    from curation.stages.mix import check_budgets_from_text_bytes

    clock = PhaseClock()
    remove_temporaries(ctx)
    if released_already(ctx):
        ctx.log(f"[release] {ctx.layout.root} is already released from this manifest; `curation regenerate` rebuilds and verifies it")
        # A run stopped between writing the lock and removing the marker released it all the same.
        release_state.mark_complete(ctx.layout.root)
        with storage.open_binary(ctx.layout.stats_file) as f:
            return orjson.loads(f.read()) | {"output": ctx.layout.root}
    claim_release(ctx)
    release_state.mark_incomplete(ctx.layout.root)
    with clock("curate"):
        pools = curate(ctx)
        check_budgets_from_text_bytes(ctx, pools)
    with clock("decide"):
        decisions_d, folder = decide(ctx, pools)
    with clock("tokenize"):
        token_files = tokenize(ctx, pools, decisions_d, folder)
    with clock("release"):
        stats = finish_run(ctx, pools, folder, token_files)
        release_state.mark_complete(ctx.layout.root)
    # The release's folder is where this run wrote it, so it is not in stats.json (releases move).
    return stats | clock.summary() | {"output": ctx.layout.root}


def remove_temporaries(ctx: RunContext) -> None:
    """Files a killed run was writing when it died are never read, and nothing else would remove them. Only
    a run holding the run lock calls this: another run's temporaries are files it is writing."""
    removed = storage.remove_temporaries(ctx.layout.cache)
    if removed:
        ctx.log(f"[cache] removed {removed} temporary files left by a stopped run")


class PhaseClock:
    """Wall-clock seconds per phase, and of the whole run from its start to its lock."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self.phases_s: dict[str, float] = {}

    @contextmanager
    def __call__(self, phase: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.phases_s[phase] = round(time.monotonic() - start, 1)

    def summary(self) -> dict[str, Any]:
        """Kept out of stats.json, whose bytes must not depend on the machine's speed."""
        return {"elapsed_s": round(time.monotonic() - self._started, 1), "phases_s": dict(self.phases_s)}
