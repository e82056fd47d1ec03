"""Beam stages for deduplication: exact text, URL, MinHash near-duplicates and repeated paragraphs.

Documents are reduced to sketches once (`SketchDocuments`), written per batch to the work folder and
passed on as handles (see `spill`). The records each method groups per document (digests for exact and
URL, paragraph digests, MinHash band rows) go through run files that one task per range of key shards
reads back (`GroupInRuns`, and the band runs of `DeduplicateMinHash`); each method decides per group and sends
its few decisions back to the handles by batch key. So no shuffle carries a document's text or sketch,
and what the runner holds grows with the duplicates, not the corpus. Each method keeps one copy per group
by the stable keep rule (MinHash: one per star of a component, see `stars`) and emits a ledger row
for every other copy; paragraph repeats come out as span edits (Dolma style)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsDict, AsList, TaggedOutput
from apache_beam.transforms.window import GlobalWindows

from curation.document import DocKey, Rejection
from curation.engine import one_local_worker
from filters.dedupe import components, stars
from filters.dedupe.buckets import band_rows, bucket_pairs
from filters.dedupe.config import DedupeConfig, MinHashConfig, ParagraphDedupeConfig, Scope
from filters.dedupe.keep_rule import KeepKey, central_first
from filters.dedupe.minhash import estimated_jaccard, exact_jaccard
from filters.dedupe.sketch import DocSketch, make_hasher, sketch_batch
from filters.dedupe.spill import (
    GROUP_SHARDS,
    RUN_RECORDS,
    RUN_ROWS,
    TASK_BYTES,
    Run,
    SketchHandle,
    load_sketches,
    read_keyed_groups,
    read_run_shards,
    shard_ranges,
    with_changes,
    write_band_run,
    write_keyed_run,
    write_sketches,
)

STAGE = "dedupe"
EXACT_FILTER = "exact_dedupe_v1"
URL_FILTER = "url_dedupe_v1"
MINHASH_FILTER = "minhash_v1"
PARAGRAPH_FILTER = "paragraph_dedupe_v1"

# What a method groups per document: (keep key as a plain tuple, represents, node, batch key, score
# basis). The score basis is the shingles or signature that MinHash scores a removal with, else None.
# Plain tuples of str/int/bytes take Beam's fast primitive coder; NamedTuples would be pickled.
MemberRecord = tuple[tuple, int, int, int, bytes | None]


class DedupeResult(NamedTuple):
    # Rejection rows for whole documents to drop, one PCollection per method (flattening them would make
    # the local runner hold every row).
    rejections: tuple[beam.PCollection, ...]
    # (source, doc_id) -> {"cluster_id": str, "cluster_size": int} for every kept document.
    clusters: beam.PCollection
    # (source, doc_id) -> sorted [(start, end), ...] character spans to cut from a kept document; None
    # without paragraph dedupe (an empty PCollection would still be steps to build, translate and run).
    paragraph_edits: beam.PCollection | None
    # Rejection rows (reason duplicate_paragraph) for the span edits, one per edited document; None likewise.
    span_rejections: beam.PCollection | None


class Deduplicate(beam.PTransform):
    """Batches of Documents in; the methods enabled in `config`, in the order exact, URL, MinHash,
    paragraph, each run on the survivors of the previous one. `work_dir` holds the sketches and runs
    while the pipeline runs (local or s3://, visible to every worker); the caller removes it."""

    def __init__(self, config: DedupeConfig, work_dir: str):
        super().__init__()
        self.config = config
        self.work_dir = work_dir

    def expand(self, batches):
        cfg = self.config
        survivors = batches | "SketchDocuments" >> beam.ParDo(_SketchBatch(cfg, self.work_dir))
        removed = []
        if cfg.exact is not None:
            exact = survivors | "DeduplicateExactText" >> KeepOnePerKey(
                _digest_key("text_digest", cfg.exact.scope), EXACT_FILTER, "duplicate_exact", self.work_dir
            )
            survivors, removed = exact.kept, removed + [exact.rejections]
        if cfg.url is not None:
            url = survivors | "DeduplicateUrls" >> KeepOnePerKey(
                _digest_key("url_digest", cfg.url.scope), URL_FILTER, "duplicate_url", self.work_dir
            )
            survivors, removed = url.kept, removed + [url.rejections]
        if cfg.minhash is not None:
            near = survivors | "DeduplicateMinHash" >> DeduplicateMinHash(cfg.minhash, self.work_dir)
            survivors, removed = near.kept, removed + [near.rejections]
        edits = span_rejections = None
        if cfg.paragraph is not None:
            edits, span_rejections = survivors | "DeduplicateParagraphs" >> DeduplicateParagraphs(
                cfg.paragraph, self.work_dir
            )
        clusters = survivors | "ReportClusters" >> beam.FlatMap(_cluster_records)
        return DedupeResult(tuple(removed), clusters, edits, span_rejections)


class _Decided(NamedTuple):
    # Sketch handles carrying the removals and new cluster sizes.
    kept: beam.PCollection
    rejections: beam.PCollection


class KeepOnePerKey(beam.PTransform):
    """Group member records by a key (None: the document takes no part) and keep the first of each group
    by the keep rule; the removals and new cluster sizes go back to the sketch handles."""

    def __init__(self, key_of: Callable[[DocSketch], Any], filter_name: str, reason: str, work_dir: str):
        super().__init__()
        self.key_of, self.filter_name, self.reason, self.work_dir = key_of, filter_name, reason, work_dir

    def expand(self, handles):
        decided = (
            handles
            | "KeyMembers" >> beam.FlatMap(_member_records, key_of=self.key_of)
            | "GroupMembers" >> GroupInRuns(self.work_dir)
            | "KeepFirstByRule"
            >> beam.ParDo(_KeepRepresentatives(self.filter_name, self.reason, _one_star)).with_outputs(
                "rejections", main="decisions"
            )
        )
        kept = handles | "ApplyDecisions" >> ApplyDecisions(decided.decisions, self.work_dir)
        return _Decided(kept, decided.rejections)


class CoGroupInRuns(beam.PTransform):
    """Beam's CoGroupByKey done through run files in the work folder: {tag: (key, value) PCollection, or a
    tuple of them} in, (key, {tag: [values]}) out. Each input's records are written, as they are made, to
    runs split into shards of keys; one task per range of shards (`ReadShardRanges`) reads its slice of
    every run. So a worker holds one range's records, where the DirectRunner would hold (and copy) every
    record of the shuffle. The PCollections of one tag are written apart rather than flattened first: the
    local runner holds every record of a Flatten of several inputs. Their runs are not flattened either: each
    writer's reach the reads as a side input of its own (a Flatten would cost the runner a stage)."""

    def __init__(self, work_dir: str):
        super().__init__()
        self.work_dir = work_dir

    def expand(self, tagged: dict):
        write = functools.partial(_write_keyed_run, self.work_dir, GROUP_SHARDS)
        runs = tuple(
            pcoll
            | f"WriteRuns[{tag}]{label}"
            >> beam.ParDo(_WriteRuns(functools.partial(_tagged, tag), write, RUN_RECORDS))
            for tag, inputs in tagged.items()
            for label, pcoll in labelled(inputs)
        )
        return runs | "ReadGroups" >> ReadShardRanges(GROUP_SHARDS, _read_cogroups, tags=tuple(tagged))


class ReadShardRanges(beam.PTransform):
    """Runs (a PCollection of them, or a tuple of such) in; `read((first, end), runs, **kwargs)` out for each
    range of shards that `shard_ranges` cuts from the runs' sizes, the ranges spread over the workers. So a
    grouping makes one read per run and range, and the ranges grow in number with the bytes grouped, up to
    `shards`."""

    def __init__(self, shards: int, read: Callable[..., Iterable], **kwargs: Any):
        super().__init__()
        self.shards, self.read, self.kwargs = shards, read, kwargs
        # Read when the graph is built, so the launcher's value reaches every worker.
        self.task_bytes = TASK_BYTES

    def expand(self, runs):
        pipeline = labelled(runs)[0][1].pipeline
        every_run = [AsList(pcoll) for _, pcoll in labelled(runs)]
        ranges = pipeline | "Once" >> beam.Impulse() | "CutRanges" >> beam.FlatMap(
            _cut_ranges, self.shards, self.task_bytes, *every_run
        )
        if not one_local_worker(pipeline.options):
            # Grouping by range spreads the ranges over the workers as a Reshuffle would, in one transform
            # instead of seven (each costs the graph's construction and the runner a stage); one local
            # worker has nowhere to spread them (see `SpreadOverWorkers`).
            ranges = ranges | "SpreadRanges" >> beam.GroupByKey()
        return ranges | "ReadRanges" >> beam.FlatMap(_read_range, self.read, *every_run, **self.kwargs)


class GroupInRuns(beam.PTransform):
    """Beam's GroupByKey done through run files (see `CoGroupInRuns`): (key, value) in, (key, [values]) out."""

    def __init__(self, work_dir: str):
        super().__init__()
        self.work_dir = work_dir

    def expand(self, pcoll):
        write = functools.partial(_write_keyed_run, self.work_dir, GROUP_SHARDS)
        return (
            pcoll
            | "WriteRuns" >> beam.ParDo(_WriteRuns(_one_record, write, RUN_RECORDS))
            | "ReadGroups" >> ReadShardRanges(GROUP_SHARDS, _read_groups)
        )


class ApplyDecisions(beam.PTransform):
    """Sketch handles in, each carrying the (node, cluster size or None) decisions of its batch key."""

    def __init__(self, decisions, work_dir: str):
        super().__init__()
        self.decisions, self.work_dir = decisions, work_dir

    def expand(self, handles):
        return (
            {"handle": handles | "KeyByBatch" >> beam.Map(_by_batch), "decision": self.decisions}
            | "JoinDecisions" >> CoGroupInRuns(self.work_dir)
            | "CarryDecisions" >> beam.FlatMapTuple(_carry_decisions)
        )


class DeduplicateMinHash(beam.PTransform):
    """LSH band buckets give candidate pairs, the verified pairs give connected components, and each
    component is split into stars (`stars`) around representatives taken in the order of
    `keep_rule.central_first` (the preferred source, then the most verified neighbours), so every removed
    document reaches `verify_jaccard` against the copy that is kept, not merely against a neighbour.

    Band rows go to sorted run files; one task per shard of band keys reads its slice of every run
    and links the buckets it finds. Only candidates (documents sharing a bucket with another) take part
    after that: their shingles go to the pair check, their member records to the cluster decision."""

    def __init__(self, config: MinHashConfig, work_dir: str):
        super().__init__()
        self.config = config
        self.work_dir = work_dir

    def expand(self, handles):
        cfg = self.config
        runs = handles | "WriteBandRuns" >> beam.ParDo(
            _WriteRuns(
                functools.partial(_band_rows, scope=cfg.scope),
                functools.partial(_write_band_run, self.work_dir, cfg.band_shards),
                RUN_ROWS,
            )
        )
        routes = runs | "LinkBucketMembers" >> ReadShardRanges(cfg.band_shards, _candidate_routes)
        split = (
            {"handle": handles | "KeyByBatch" >> beam.Map(_by_batch), "route": routes}
            | "JoinCandidates" >> CoGroupInRuns(self.work_dir)
            | "SplitCandidates" >> beam.ParDo(_SplitCandidates()).with_outputs("halves", main="members")
        )
        similar_pairs = split.halves | "VerifyPairs" >> KeepSimilarPairs(cfg.verify_jaccard, self.work_dir)
        node_to_component = similar_pairs | "FindComponents" >> FindConnectedComponents(cfg.component_rounds)
        node_to_degree = (
            similar_pairs
            | "BothEnds" >> beam.FlatMap(lambda pair: pair)
            | "CountSimilarNeighbours" >> beam.combiners.Count.PerElement()
        )
        decided = (
            {"member": split.members, "component": node_to_component, "degree": node_to_degree}
            | "JoinComponents" >> CoGroupInRuns(self.work_dir)
            | "KeyByComponent" >> beam.FlatMapTuple(_key_by_component)
            | "GroupComponents" >> GroupInRuns(self.work_dir)
            | "SplitIntoStars"
            >> beam.ParDo(
                _KeepRepresentatives(
                    MINHASH_FILTER,
                    "near_duplicate",
                    functools.partial(_near_stars, cfg.verify_jaccard),
                )
            ).with_outputs("rejections", main="decisions")
        )
        kept = handles | "ApplyDecisions" >> ApplyDecisions(decided.decisions, self.work_dir)
        return _Decided(kept, decided.rejections)


class KeepSimilarPairs(beam.PTransform):
    """Pair halves ((u, v), shingles) in, one from each end; the pair (u, v) out when its exact
    shingle Jaccard reaches the threshold (None: every candidate pair, trusting LSH)."""

    def __init__(self, min_jaccard: float | None, work_dir: str):
        super().__init__()
        self.min_jaccard, self.work_dir = min_jaccard, work_dir

    def expand(self, halves):
        return (
            halves
            | "GroupPairs" >> GroupInRuns(self.work_dir)
            | "KeepSimilar" >> beam.FlatMap(_similar_pair, self.min_jaccard)
        )


class FindConnectedComponents(beam.PTransform):
    """Edges (u, v) in, node -> component label out, for every node on an edge.

    `rounds` large-star/small-star rounds, then the fixed-point check: an input edge whose ends carry
    different labels means the rounds stopped early, and such labels are merged by union-find in one
    small step, so the labels are right whatever the round count.
    """

    def __init__(self, rounds: int):
        super().__init__()
        self.rounds = rounds

    def expand(self, edges):
        # Each step's output goes straight into the next step's grouping: large-star's edges are keyed by
        # their larger end already, and small-star's come out in both directions, as the next round and
        # the labels group them. Fewer transforms, less fixed cost per pipeline.
        neighbours = edges | "Neighbours" >> beam.FlatMap(components.both_directions)
        for r in range(self.rounds):
            neighbours = (
                neighbours
                | f"LargeStar{r}Group" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMapTuple(components.large_star)
                | f"SmallStar{r}Group" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMapTuple(components.small_star_both_directions)
            )
        node_to_label = (
            neighbours
            | "LabelGroup" >> beam.GroupByKey()
            | "LabelBySmallest" >> beam.MapTuple(lambda u, nbrs: (u, components.label(u, nbrs)))
        )
        label_remap = (
            edges
            | "FixedPointCheck" >> _LabelsAcrossEdges(node_to_label)
            | "GatherResidual" >> beam.Map(lambda pair: (None, pair))
            | "GroupResidual" >> beam.GroupByKey()
            | "ResolveResidual"
            >> beam.FlatMapTuple(lambda _, pairs: components.resolve_residual(pairs).items())
        )
        return node_to_label | "ApplyResidual" >> beam.Map(_relabel, remap=AsDict(label_remap))


class _LabelsAcrossEdges(beam.PTransform):
    """(label(u), label(v)) for every edge whose ends carry different labels."""

    def __init__(self, node_to_label):
        super().__init__()
        self.node_to_label = node_to_label

    def expand(self, edges):
        first = (
            {"edge": edges, "label": self.node_to_label}
            | "JoinFirst" >> beam.CoGroupByKey()
            | "CarryLabel" >> beam.FlatMapTuple(_carry_label)
        )
        return (
            {"half": first, "label": self.node_to_label}
            | "JoinSecond" >> beam.CoGroupByKey()
            | "DifferingLabels" >> beam.ParDo(_DifferingLabels())
        )


class DeduplicateParagraphs(beam.PTransform):
    """Repeated paragraphs (lines) keep their first occurrence by the keep rule, then by position;
    every other occurrence becomes a span to remove."""

    def __init__(self, config: ParagraphDedupeConfig, work_dir: str):
        super().__init__()
        self.config = config
        self.work_dir = work_dir

    def expand(self, handles):
        doc_to_spans = (
            handles
            | "KeyByParagraph" >> beam.FlatMap(_paragraph_records, scope=self.config.scope)
            | "GroupParagraphs" >> GroupInRuns(self.work_dir)
            | "RepeatedOccurrences" >> beam.FlatMapTuple(_repeated_occurrences)
            | "GroupByDocument" >> GroupInRuns(self.work_dir)
            | "SortSpans" >> beam.MapTuple(lambda key, spans: (key, sorted(spans)))
        )
        span_rejections = doc_to_spans | "LedgerRows" >> beam.MapTuple(_span_rejection)
        return doc_to_spans, span_rejections


class _SketchBatch(beam.DoFn):
    def __init__(self, config: DedupeConfig, work_dir: str):
        self.config = config
        self.work_dir = work_dir
        self.hasher = None

    def setup(self):
        self.hasher = make_hasher(self.config)

    def process(self, batch) -> Iterator[SketchHandle]:
        sketches = sketch_batch(list(batch), self.config, self.hasher)
        if sketches:
            # The batch key, the node of the batch's first document, routes decisions back.
            yield write_sketches(self.work_dir, sketches[0].node, sketches)


class _WriteRuns(beam.DoFn):
    """What `parts_of` makes of each element (band rows of a sketch handle, a keyed record), gathered
    across elements and written by `write` as one run every `run_size` rows or records, so memory stays
    fixed."""

    def __init__(self, parts_of: Callable[[Any], Any], write: Callable[[list], Run], run_size: int):
        self.parts_of, self.write, self.run_size = parts_of, write, run_size
        self._parts: list = []
        self._size = 0

    def start_bundle(self):
        self._parts, self._size = [], 0

    def process(self, element) -> Iterator[Run]:
        part = self.parts_of(element)
        self._parts.append(part)
        self._size += len(part)
        if self._size >= self.run_size:
            yield self._flush()

    def finish_bundle(self):
        if self._size:
            yield GlobalWindows.windowed_value(self._flush())

    def _flush(self) -> Run:
        parts, self._parts, self._size = self._parts, [], 0
        return self.write(parts)


class _KeepRepresentatives(beam.DoFn):
    """`split` orders a group's members and cuts them into stars [(representative, [(member, score)])]:
    (batch key, (node, cluster size)) for each representative that absorbed someone, (batch key, (node,
    None)) for every absorbed member, which also gets a ledger row naming its representative and score."""

    def __init__(self, filter_name: str, reason: str, split: Callable[[list], list]):
        self.filter_name, self.reason, self.split = filter_name, reason, split
        self.removed = Metrics.counter(STAGE, reason)

    def process(self, keyed_group) -> Iterator[Any]:
        if len(keyed_group[1]) == 1:
            return
        for (kept_keep, kept_represents, kept_node, kept_batch, _), absorbed in self.split(keyed_group[1]):
            if not absorbed:
                continue
            cluster_size = kept_represents + sum(m[1] for m, _ in absorbed)
            yield kept_batch, (kept_node, cluster_size)
            for (keep, _, node, batch, _), score in absorbed:
                self.removed.inc()
                yield batch, (node, None)
                yield TaggedOutput(
                    "rejections",
                    _duplicate_rejection(
                        KeepKey(*keep),
                        KeepKey(*kept_keep),
                        cluster_size,
                        self.filter_name,
                        self.reason,
                        score,
                    ),
                )


class _SplitCandidates(beam.DoFn):
    """Per batch with candidates (documents sharing a bucket): a member record per candidate for the
    cluster decision, and one half per pair, with the candidate's shingles, for the pair check."""

    def process(self, keyed) -> Iterator[Any]:
        _, g = keyed
        neighbours: dict[int, set[int]] = {}
        for node, other in g["route"]:
            neighbours.setdefault(node, set()).add(other)
        if not neighbours:
            return
        for handle in g["handle"]:
            for s in load_sketches(handle):
                if s.node not in neighbours:
                    continue
                basis = s.shingles if s.shingles is not None else s.signature
                yield s.node, (tuple(s.keep), s.represents, s.node, handle[0], basis)
                for other in neighbours[s.node]:
                    pair = (s.node, other) if s.node < other else (other, s.node)
                    yield TaggedOutput("halves", (pair, s.shingles))


class _DifferingLabels(beam.DoFn):
    def __init__(self):
        self.residual = Metrics.counter(STAGE, "components_residual_edges")

    def process(self, keyed):
        _, g = keyed
        (own,) = list(g["label"])
        for other in g["half"]:
            if other != own:
                self.residual.inc()
                yield other, own


def _duplicate_rejection(
    removed: KeepKey, kept: KeepKey, cluster_size: int, filter_name: str, reason: str, score=None
) -> Rejection:
    return Rejection(
        doc_id=removed.doc_id,
        source=removed.source,
        stage=STAGE,
        filter=filter_name,
        reason=reason,
        score=score,
        detail={
            "kept_id": kept.doc_id,
            "kept_source": kept.source,
            "cluster_id": kept.content_hash,
            "cluster_size": cluster_size,
        },
    )


def _digest_key(field: str, scope: Scope) -> Callable[[DocSketch], Any]:
    def key_of(sketch: DocSketch):
        digest = getattr(sketch, field)
        if digest is None:
            return None
        return (sketch.source, digest) if scope == "per_source" else digest

    return key_of


def _member_records(
    handle: SketchHandle, key_of: Callable[[DocSketch], Any]
) -> list[tuple[Any, MemberRecord]]:
    records = []
    for s in load_sketches(handle):
        key = key_of(s)
        if key is not None:
            records.append((key, (tuple(s.keep), s.represents, s.node, handle[0], None)))
    return records


def _carry_decisions(_, g: dict) -> Iterator[SketchHandle]:
    decided = dict(g["decision"])
    for handle in g["handle"]:
        yield with_changes(handle, decided) if decided else handle


def labelled(inputs: beam.PCollection | tuple[beam.PCollection, ...]) -> list[tuple[str, beam.PCollection]]:
    """(label suffix, PCollection) for one PCollection ("") or each of a tuple ("0", "1", ...)."""
    if isinstance(inputs, beam.PCollection):
        return [("", inputs)]
    return [(str(i), pcoll) for i, pcoll in enumerate(inputs)]


def _by_batch(handle: SketchHandle) -> tuple[int, SketchHandle]:
    return handle[0], handle


def _tagged(tag: str, record: tuple[Any, Any]) -> list[tuple[Any, tuple[str, Any]]]:
    return [(record[0], (tag, record[1]))]


def _cut_ranges(_, shards: int, task_bytes: int, *runs_of_inputs: list[Run]) -> list[tuple[tuple[int, int], None]]:
    return [(shard_range, None) for shard_range in shard_ranges(itertools.chain(*runs_of_inputs), shards, task_bytes)]


def _read_range(
    keyed_range: tuple[tuple[int, int], Any], read: Callable[..., Iterable], *runs_of_inputs: list[Run], **kwargs
) -> Iterable:
    return read(keyed_range[0], runs=[run for runs in runs_of_inputs for run in runs], **kwargs)


def _one_record(record: tuple[Any, Any]) -> list[tuple[Any, Any]]:
    return [record]


def _read_groups(shard_range: tuple[int, int], runs: list[Run]) -> Iterator[tuple[Any, list]]:
    yield from read_keyed_groups(runs, *shard_range).items()


def _read_cogroups(
    shard_range: tuple[int, int], runs: list[Run], tags: tuple[str, ...]
) -> Iterator[tuple[Any, dict]]:
    for key, tagged_values in read_keyed_groups(runs, *shard_range).items():
        by_tag: dict[str, list] = {tag: [] for tag in tags}
        for tag, value in tagged_values:
            by_tag[tag].append(value)
        yield key, by_tag


def _band_rows(handle: SketchHandle, scope: Scope) -> np.ndarray:
    return band_rows(load_sketches(handle), handle[0], scope)


def _write_band_run(work_dir: str, shards: int, parts: list[np.ndarray]) -> Run:
    return write_band_run(work_dir, np.concatenate(parts), shards)


def _write_keyed_run(work_dir: str, shards: int, parts: list[list]) -> Run:
    return write_keyed_run(work_dir, itertools.chain.from_iterable(parts), shards)


def _candidate_routes(shard_range: tuple[int, int], runs: list[Run]) -> Iterator[tuple[int, tuple[int, int]]]:
    """(batch key, (node, other node)) for both ends of every candidate pair in a range of shards of band
    keys, so each batch learns which of its documents are candidates and with whom."""
    packed = (blob for run in runs for blob in read_run_shards(run, *shard_range))
    for (u, batch_u), (v, batch_v) in bucket_pairs(packed):
        yield batch_u, (u, v)
        yield batch_v, (v, u)


def _similar_pair(
    keyed: tuple[tuple[int, int], Iterable], min_jaccard: float | None
) -> Iterator[tuple[int, int]]:
    pair, halves = keyed
    if min_jaccard is None:
        yield pair
        return
    shingles_u, shingles_v = halves
    if exact_jaccard(_uint32(shingles_u), _uint32(shingles_v)) >= min_jaccard:
        yield pair
    else:
        Metrics.counter(STAGE, "candidate_pair_below_jaccard").inc()


def _relabel(node_label: tuple[int, int], remap: dict[int, int]) -> tuple[int, int]:
    node, lab = node_label
    return node, remap.get(lab, lab)


def _carry_label(u: int, g: dict) -> Iterator[tuple[int, int]]:
    (label_u,) = list(g["label"])
    for v in g["edge"]:
        yield v, label_u


def _key_by_component(node: int, g: dict) -> Iterator[tuple[int, tuple[MemberRecord, int]]]:
    """(component label, (member record, its count of verified neighbours)) for a candidate."""
    labels, degrees = list(g["component"]), list(g["degree"])
    for member in g["member"]:
        yield (labels[0] if labels else node), (member, degrees[0] if degrees else 0)


def _one_star(members: Iterable[MemberRecord]) -> list[tuple[MemberRecord, list]]:
    """Exact and URL groups hold copies of one key: the first by the keep rule stands for all, unscored."""
    first, *rest = sorted(members, key=lambda m: m[0])
    return [(first, [(m, None) for m in rest])]


def _near_stars(
    min_jaccard: float | None, members: Iterable[tuple[MemberRecord, int]]
) -> list[tuple[MemberRecord, list]]:
    """A component's stars whose members reach `min_jaccard` against their representative, scored by
    the exact Jaccard of their shingles (without a threshold: the whole component, scored by signatures)."""
    exact = min_jaccard is not None
    ordered = [m for m, _ in sorted(members, key=lambda md: central_first(md[0][0], md[1]))]
    return stars.star_clusters(
        ordered, lambda member, kept: _near_score(exact, member[4], kept[4]), min_jaccard
    )


def _near_score(exact: bool, removed: bytes, kept: bytes) -> float:
    """Jaccard of a near duplicate to its kept copy: exact on shingles, else estimated from signatures."""
    if exact:
        return exact_jaccard(_uint32(removed), _uint32(kept))
    return estimated_jaccard(_uint32(removed), _uint32(kept))


def _uint32(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint32)


def _cluster_records(handle: SketchHandle) -> Iterator[tuple[DocKey, dict[str, Any]]]:
    for s in load_sketches(handle):
        yield (s.source, s.doc_id), {"cluster_id": s.content_hash, "cluster_size": s.represents}


def _paragraph_records(handle: SketchHandle, scope: Scope) -> list[tuple[Any, tuple]]:
    return [
        ((s.source, p.digest) if scope == "per_source" else p.digest, (tuple(s.keep), p.start, p.end))
        for s in load_sketches(handle)
        for p in s.paragraphs
    ]


def _repeated_occurrences(_, occurrences: Iterable[tuple]) -> Iterator[tuple[DocKey, tuple[int, int]]]:
    ordered = sorted(occurrences)
    for keep, start, end in ordered[1:]:
        Metrics.counter(STAGE, "duplicate_paragraph").inc()
        removed = KeepKey(*keep)
        yield (removed.source, removed.doc_id), (start, end)


def _span_rejection(key: DocKey, spans: list[tuple[int, int]]) -> Rejection:
    return Rejection(
        doc_id=key[1],
        source=key[0],
        stage=STAGE,
        filter=PARAGRAPH_FILTER,
        reason="duplicate_paragraph",
        detail={"spans": [list(s) for s in spans]},
    )
