"""The mix plan, made on workers (issue #12: nothing that grows with the corpus runs in the launcher).

The launcher holds per-source token counts only: it sets each source's budget and checks it can be met.
One pipeline then does per-document work, passing between its stages only file names and per-source sums:

1. Each token file's task sums its source's tokens per sampling weight (the weights are dedup cluster sizes,
   so a handful of numbers); from those sums one task finds the scale that meets each budget and the tokens
   the documents' whole copies take (the same for every document of one weight).
2. Each token file's task gives each of its documents its whole copies and, if it may get one more, a
   sampling key. Copies and candidates are written as sorted runs in scratch.
3. One streaming task merges every source's candidates in key order and gives extra copies while they fit
   the budget (`mixes.sampling.take_fractional_copies`).
4. One streaming task merges every copy in the mix's seeded order and cuts the order into shards, writing
   each shard's plan file when it closes (and giving it on to the task that writes the shard), then one small summary (documents and tokens per shard, tokens
   per source) that the launcher reads back.

These are the steps of the whole-source-in-memory reference (`plan_source` and `shuffle_order` in
tests/helpers_sampling.py, which the sampling tests run), so the plan, and the shards, are the same bytes. A task holds one token file's table, or one row per
run merged, or one shard; the scratch lies in `_cache/work/mix-<digest>/`, removed when the plan is made."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

import apache_beam as beam
import orjson
import pyarrow.parquet as pq

from curation import storage
from curation.digests import CODE_VERSION, digest
from curation.engine import GatherToList, pipeline_options, run_pipeline
from curation.stages.sorted_runs import RUN_ROWS, WriteSortedRunsFn, run_rows, write_run
from curation.stages.tokenize import TokenFile
from mixes import sampling, shards


@dataclass(frozen=True)
class SourceBudget:
    """What the launcher decides per source, from counts alone."""

    budget: int
    max_repetition: float
    weight_by_cluster_size: bool


@dataclass(frozen=True)
class ShardPlan:
    """One shard of the plan: its plan file and how many documents and tokens it holds."""

    index: int
    uri: str
    documents: int
    tokens: int


@dataclass
class MixPlan:
    """Each shard's plan file with its documents and tokens, and per-source sampling facts."""

    plan_uris: list[str]
    shard_sizes: list[tuple[int, int]]
    per_source: dict[str, dict[str, Any]]


def budgets(manifest, available: dict[str, int]) -> dict[str, tuple[int, float]]:
    """(token budget, max repetition) per source; without a mix section every kept token is used once."""
    mix = manifest.mix
    if mix is None or not mix.sources:
        return {name: (tokens, 1.0) for name, tokens in available.items()}
    fixed = {n: c.tokens for n, c in mix.sources.items() if c.tokens is not None}
    ratios = {n: c.ratio for n, c in mix.sources.items() if c.ratio is not None}
    shares = sampling.apportion(mix.target_tokens or sum(fixed.values()), ratios, fixed)
    return {n: (shares[n], mix.sources[n].max_repetition) for n in mix.sources}


def check_feasible(
    manifest, available: dict[str, int], available_means: str = "available"
) -> dict[str, tuple[int, float]]:
    """Every source's budget, refused (before any work) if some source cannot meet it."""
    wanted = budgets(manifest, available)
    sampling.check_feasible(
        {n: b for n, (b, _) in wanted.items()},
        available,
        {n: r for n, (_, r) in wanted.items()},
        available_means,
    )
    return wanted


def _table(tf: TokenFile, columns: list[str] | None = None) -> dict[str, list]:
    with storage.open_seekable(tf.table_uri) as f:
        return pq.read_table(f, columns=columns).to_pydict()


def _weight_sums(index: int, token_files: list[TokenFile], sources: dict[str, SourceBudget]) -> Iterator[tuple[tuple[str, float], int]]:
    tf = token_files[index]
    table = _table(tf, ["n_tokens", "cluster_size"])
    sums: Counter[float] = Counter()
    for n_tokens, cluster_size in zip(table["n_tokens"], table["cluster_size"]):
        sums[sampling.document_weight(cluster_size, sources[tf.source].weight_by_cluster_size)] += n_tokens
    for weight, tokens in sorted(sums.items()):
        yield (tf.source, weight), tokens


class _Scales(NamedTuple):
    """Per source, the scale that meets its budget and the tokens of its documents' whole copies."""

    scale: dict[str, float]
    whole_tokens: dict[str, int]


def _scales(weight_sums: list[tuple[tuple[str, float], int]], sources: dict[str, SourceBudget]) -> _Scales:
    groups: dict[str, Counter[float]] = {name: Counter() for name in sources}
    for (name, weight), tokens in weight_sums:
        groups[name][weight] += tokens
    scale = {name: sampling.scale_meeting_budget(dict(groups[name]), s.budget, s.max_repetition) for name, s in sources.items()}
    # Documents of one weight get the same whole copies, so the sums give their tokens without another pass.
    whole_tokens = {
        name: sum(sampling.expected_copies(scale[name], weight, s.max_repetition)[0] * tokens for weight, tokens in groups[name].items())
        for name, s in sources.items()
    }
    return _Scales(scale, whole_tokens)


class _SelectCopiesFn(beam.DoFn):
    """A token file's documents: each whole copy as a row of the mix's order, and each document that may get
    one more copy as a candidate, sorted into runs by this task itself (a run's name per RUN_ROWS rows goes
    on, not a Beam element per row): copies on the main output, candidates tagged."""

    def __init__(self, token_files: list[TokenFile], sources: dict[str, SourceBudget], seed: int, work_dir: str):
        self._token_files = token_files
        self._sources = sources
        self._seed = seed
        self._work_dir = work_dir

    def process(self, index: int, scales: _Scales):
        tf = self._token_files[index]
        source = self._sources[tf.source]
        table = _table(tf)
        copies: list[dict[str, Any]] = []
        candidates: list[dict[str, Any]] = []
        for j in range(len(table["id"])):
            weight = sampling.document_weight(table["cluster_size"][j], source.weight_by_cluster_size)
            whole, fraction = sampling.expected_copies(scales.scale[tf.source], weight, source.max_repetition)
            ref = [index, table["start"][j], table["n_tokens"][j], table["id"][j], table["uri"][j], table["line"][j], table["offset"][j]]
            copies += (_copy_row(self._seed, tf.source, ref, repetition) for repetition in range(whole))
            if fraction > 0:
                key = sampling.candidate_key(self._seed, tf.source, ref[3], fraction)
                candidates.append({"source": tf.source, "key": key, "ref": ref, "repetition": whole})
            if len(copies) >= RUN_ROWS:
                yield write_run(self._work_dir, "copies", copies, _copy_order)
                copies = []
            if len(candidates) >= RUN_ROWS:
                yield beam.pvalue.TaggedOutput("candidates", write_run(self._work_dir, "candidates", candidates, _candidate_order))
                candidates = []
        if copies:
            yield write_run(self._work_dir, "copies", copies, _copy_order)
        if candidates:
            yield beam.pvalue.TaggedOutput("candidates", write_run(self._work_dir, "candidates", candidates, _candidate_order))


def _copy_row(seed: int, source: str, ref: list, repetition: int) -> dict[str, Any]:
    """One copy of a document: its place in the mix's order and where its tokens are."""
    return {"order": list(sampling.order_key(seed, source, ref[3], repetition)), "ref": ref}


def _copy_order(row: dict[str, Any]) -> list:
    return row["order"]


def _candidate_order(row: dict[str, Any]) -> tuple[str, float, str]:
    return row["source"], row["key"], row["ref"][3]


def _take_extra_copies(run_uris: list[str], scales: _Scales, sources: dict[str, SourceBudget], seed: int) -> Iterator[dict[str, Any]]:
    """Every source's candidates merged in key order, streaming: the copies that close its budget."""
    merged = _merged(run_uris, _candidate_order)
    for name, rows in itertools.groupby(merged, key=lambda row: row["source"]):
        candidates = (sampling.Candidate(row["key"], row["ref"][3], row["ref"][2], row) for row in rows)
        gap = sources[name].budget - scales.whole_tokens[name]
        for taken in sampling.take_fractional_copies(candidates, gap):
            yield _copy_row(seed, name, taken.payload["ref"], taken.payload["repetition"])


def _merged(run_uris: Iterable[str], key) -> Iterator[dict[str, Any]]:
    return heapq.merge(*(run_rows(uri) for uri in sorted(run_uris)), key=key)


def _cut_shards(run_uris: list[str], plans_dir: str, summary_uri: str, shard_tokens: int) -> Iterator[ShardPlan]:
    """Every copy merged in the mix's order, cut into shards as `mixes.shards.plan_shards` cuts them; each
    shard's plan is written, and given on, when it closes."""
    # The plan file's format belongs to the shard writer, which imports this module.
    from curation.stages.mix import DocRef, write_shard_plan

    achieved: Counter[str] = Counter()
    sizes = []
    previous = None

    def copies() -> Iterator[tuple[tuple[DocRef, int], int]]:
        nonlocal previous
        for row in _merged(run_uris, _copy_order):
            _, source, doc_id, repetition = row["order"]
            if (source, doc_id, repetition) == previous:
                raise ValueError(f"source {source!r} lists document {doc_id!r} more than once")
            previous = (source, doc_id, repetition)
            file, start, n_tokens, _, uri, line, offset = row["ref"]
            achieved[source] += n_tokens
            yield (DocRef(file, start, n_tokens, doc_id, source, uri, line, offset), repetition), n_tokens

    for index, items in enumerate(shards.iter_shards(copies(), shard_tokens)):
        plan = ShardPlan(index, plan_uri(plans_dir, index), len(items), sum(ref.n_tokens for ref, _ in items))
        write_shard_plan(plan.uri, items)
        sizes.append((plan.documents, plan.tokens))
        yield plan
    with storage.atomic_write(summary_uri) as f:
        f.write(orjson.dumps({"shard_sizes": sizes, "achieved_tokens": achieved}))


def plan_uri(plans_dir: str, index: int) -> str:
    return storage.join(plans_dir, f"part-{index:05d}.parquet")


@dataclass(frozen=True)
class MixSetup:
    """What the launcher decides before the plan's pipeline, from counts alone, and where the plan goes."""

    token_files: list[TokenFile]
    available: dict[str, int]
    sources: dict[str, SourceBudget]
    seed: int
    shard_tokens: int
    plans_dir: str
    work_dir: str

    @property
    def summary_uri(self) -> str:
        return storage.join(self.work_dir, "summary.json")


def set_up_mix(ctx, token_files: list[TokenFile]) -> MixSetup:
    """Each source's budget, checked against its tokens, and empty folders for the plan and its scratch."""
    m = ctx.manifest
    available = {name: 0 for name in ctx.sources}
    for tf in token_files:
        available[tf.source] += tf.tokens
    wanted = check_feasible(m, available)
    weighted = {n: c.weight_by_cluster_size for n, c in (m.mix.sources.items() if m.mix else [])}
    sources = {name: SourceBudget(budget, max_rep, weighted.get(name, False)) for name, (budget, max_rep) in wanted.items()}
    d = digest(CODE_VERSION, m.seed, m.mix, m.output.shard_tokens, [tf.digest for tf in token_files])
    # Named by what the plan is made of; the run lock keeps any other run from writing here meanwhile.
    setup = MixSetup(token_files, available, sources, m.seed, m.output.shard_tokens, ctx.layout.cached("mix", d), ctx.layout.cached("work", f"mix-{d}"))
    storage.remove_tree(setup.plans_dir)
    storage.remove_tree(setup.work_dir)
    return setup


class PlanMix(beam.PTransform):
    """The plan's steps (this module's docstring); its output is each shard's ShardPlan, and once the
    pipeline has run, `read_plan` reads back the summary."""

    def __init__(self, setup: MixSetup):
        super().__init__()
        self._setup = setup

    def expand(self, pbegin):
        s = self._setup
        token_files, sources, work_dir = s.token_files, s.sources, s.work_dir
        listed = pbegin | "ListTokenFiles" >> beam.Create(list(range(len(token_files))))
        scales = (
            listed
            | "SumTokensPerWeight" >> beam.FlatMap(_weight_sums, token_files, sources)
            | "GatherSums" >> GatherToList()
            | "Scales" >> beam.Map(_scales, sources)
        )
        selected = listed | "SelectCopies" >> beam.ParDo(_SelectCopiesFn(token_files, sources, s.seed, work_dir), beam.pvalue.AsSingleton(scales)).with_outputs(
            "candidates", main="copies"
        )
        candidate_runs = selected.candidates | "GatherCandidateRuns" >> GatherToList()
        extra = candidate_runs | "TakeExtraCopies" >> beam.FlatMap(_take_extra_copies, beam.pvalue.AsSingleton(scales), sources, s.seed)
        # Each branch sorts its own copies into runs, so only run names meet in the flatten.
        extra_runs = (
            extra
            | "SortExtraCopies" >> beam.ParDo(WriteSortedRunsFn(work_dir, "copies", _copy_order))
            | "RunNames" >> beam.Map(lambda kind_uri: kind_uri[1])
        )
        return (
            (selected.copies, extra_runs)
            | "CopyRuns" >> beam.Flatten()
            | "GatherCopyRuns" >> GatherToList()
            | "CutShards" >> beam.FlatMap(_cut_shards, s.plans_dir, s.summary_uri, s.shard_tokens)
        )


def read_plan(setup: MixSetup) -> MixPlan:
    """The plan's summary, read back once its pipeline has run (before the caller removes its scratch)."""
    with storage.open_binary(setup.summary_uri) as f:
        summary = orjson.loads(f.read())
    per_source = {}
    for name, s in sorted(setup.sources.items()):
        achieved = summary["achieved_tokens"].get(name, 0)
        available = setup.available[name]
        per_source[name] = {
            "available_tokens": available,
            "requested_tokens": s.budget,
            "achieved_tokens": achieved,
            "repetition": achieved / available if available else 0.0,
            "max_repetition": s.max_repetition,
        }
    sizes = [tuple(size) for size in summary["shard_sizes"]]
    return MixPlan([plan_uri(setup.plans_dir, i) for i in range(len(sizes))], sizes, per_source)


def plan_mix(ctx, token_files: list[TokenFile]) -> MixPlan:
    """Sample each source to its budget, order every copy and cut the order into shards, on workers; the
    launcher reads back one small summary."""
    setup = set_up_mix(ctx, token_files)
    try:
        run_pipeline(pipeline_options(ctx.beam_args, len(token_files)), lambda p: p | "PlanMix" >> PlanMix(setup), log_path=ctx.worker_log("mix_plan"))
        return read_plan(setup)
    finally:
        storage.remove_tree(setup.work_dir)
