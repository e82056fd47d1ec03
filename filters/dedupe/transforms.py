"""Beam stages for deduplication: exact text, URL, MinHash near-duplicates and repeated paragraphs.

Documents are reduced to sketches once (`SketchDocuments`) and stay in batches keyed by a batch key;
each method shuffles compact records (digests, packed band rows, node pairs), decides per group and
sends its few decisions back to the batches by that key, so no shuffle carries one record per document
and band or a document's text. Each method keeps one copy per group by the stable keep rule and emits a
ledger row for every other copy; paragraph repeats come out as span edits (Dolma style).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsDict, TaggedOutput

from curation.document import DocKey, Rejection
from filters.dedupe import components
from filters.dedupe.buckets import band_rows_by_shard, bucket_pairs
from filters.dedupe.config import DedupeConfig, MinHashConfig, ParagraphDedupeConfig, Scope
from filters.dedupe.keep_rule import KeepKey
from filters.dedupe.minhash import estimated_jaccard, exact_jaccard
from filters.dedupe.sketch import DocSketch, make_hasher, sketch_batch

STAGE = "dedupe"
EXACT_FILTER = "exact_dedupe_v1"
URL_FILTER = "url_dedupe_v1"
MINHASH_FILTER = "minhash_v1"
PARAGRAPH_FILTER = "paragraph_dedupe_v1"

# (batch key, sketches): the batch key, the node of the batch's first document, routes decisions back.
SketchBatch = tuple[int, list[DocSketch]]
# What exact and URL grouping shuffle per document: (keep key as a plain tuple, represents, node, batch
# key). Plain tuples of str/int/bytes take Beam's fast primitive coder; NamedTuples would be pickled.
MemberRecord = tuple[tuple, int, int, int]


class DedupeResult(NamedTuple):
    # Rejection rows for whole documents to drop.
    rejections: beam.PCollection
    # (source, doc_id) -> {"cluster_id": str, "cluster_size": int} for every kept document.
    clusters: beam.PCollection
    # (source, doc_id) -> sorted [(start, end), ...] character spans to cut from a kept document.
    paragraph_edits: beam.PCollection
    # Rejection rows (reason duplicate_paragraph) for the span edits, one per edited document.
    span_rejections: beam.PCollection


class Deduplicate(beam.PTransform):
    """Batches of Documents in; the methods enabled in `config`, in the order exact, URL, MinHash,
    paragraph, each run on the survivors of the previous one."""

    def __init__(self, config: DedupeConfig):
        super().__init__()
        self.config = config

    def expand(self, batches):
        cfg = self.config
        survivors = batches | "SketchDocuments" >> beam.ParDo(_SketchBatch(cfg))
        removed = []
        if cfg.exact is not None:
            exact = survivors | "DeduplicateExactText" >> KeepOnePerKey(
                _digest_key("text_digest", cfg.exact.scope), EXACT_FILTER, "duplicate_exact"
            )
            survivors, removed = exact.kept, removed + [exact.rejections]
        if cfg.url is not None:
            url = survivors | "DeduplicateUrls" >> KeepOnePerKey(
                _digest_key("url_digest", cfg.url.scope), URL_FILTER, "duplicate_url"
            )
            survivors, removed = url.kept, removed + [url.rejections]
        if cfg.minhash is not None:
            near = survivors | "DeduplicateMinHash" >> DeduplicateMinHash(cfg.minhash)
            survivors, removed = near.kept, removed + [near.rejections]
        if cfg.paragraph is not None:
            edits, span_rejections = survivors | "DeduplicateParagraphs" >> DeduplicateParagraphs(
                cfg.paragraph
            )
        else:
            edits = batches.pipeline | "NoParagraphEdits" >> beam.Create([])
            span_rejections = batches.pipeline | "NoSpanRejections" >> beam.Create([])
        rejections = (
            removed or [batches.pipeline | "NoRejections" >> beam.Create([])]
        ) | "MergeRejections" >> (beam.Flatten())
        clusters = survivors | "ReportClusters" >> beam.FlatMapTuple(_cluster_records)
        return DedupeResult(rejections, clusters, edits, span_rejections)


class _Decided(NamedTuple):
    # Sketch batches that survive.
    kept: beam.PCollection
    rejections: beam.PCollection


class KeepOnePerKey(beam.PTransform):
    """Group member records by a key (None: the document takes no part) and keep the first of each group
    by the keep rule; the removals and new cluster sizes go back to the sketch batches."""

    def __init__(self, key_of: Callable[[DocSketch], Any], filter_name: str, reason: str):
        super().__init__()
        self.key_of, self.filter_name, self.reason = key_of, filter_name, reason

    def expand(self, batches):
        decided = (
            batches
            | "KeyMembers" >> beam.FlatMap(_member_records, key_of=self.key_of)
            | "GroupByKey" >> beam.GroupByKey()
            | "KeepFirstByRule"
            >> beam.ParDo(_KeepFirstMember(self.filter_name, self.reason)).with_outputs(
                "rejections", main="decisions"
            )
        )
        kept = (
            {"batch": batches, "decision": decided.decisions}
            | "JoinDecisions" >> beam.CoGroupByKey()
            | "ApplyDecisions" >> beam.FlatMapTuple(_apply_decisions)
        )
        return _Decided(kept, decided.rejections)


class DeduplicateMinHash(beam.PTransform):
    """LSH band buckets give candidate pairs, connected components give clusters, the keep rule
    picks each cluster's representative; the rest are near duplicates.

    Only candidates (documents sharing a bucket with another) leave their batch: their shingles go to
    the pair check and their sketches to the cluster decision."""

    def __init__(self, config: MinHashConfig):
        super().__init__()
        self.config = config

    def expand(self, batches):
        cfg = self.config
        batch_to_candidate_routes = (
            batches
            | "PackBandRows" >> beam.FlatMap(_band_rows, scope=cfg.scope, shards=cfg.band_shards)
            | "GroupShards" >> beam.GroupByKey()
            | "LinkBucketMembers" >> beam.FlatMapTuple(_candidate_routes)
        )
        split = (
            {"batch": batches, "route": batch_to_candidate_routes}
            | "JoinCandidates" >> beam.CoGroupByKey()
            | "SplitCandidates"
            >> beam.ParDo(_SplitCandidates()).with_outputs("candidates", "halves", main="alone")
        )
        similar_pairs = split.halves | "VerifyPairs" >> KeepSimilarPairs(cfg.verify_jaccard)
        node_to_component = similar_pairs | "FindComponents" >> FindConnectedComponents(cfg.component_rounds)
        decided = (
            {"sketch": split.candidates, "component": node_to_component}
            | "JoinComponents" >> beam.CoGroupByKey()
            | "KeyByComponent" >> beam.FlatMapTuple(_key_by_component)
            | "GroupClusters" >> beam.GroupByKey()
            | "KeepFirstByRule" >> beam.ParDo(_KeepFirstSketch()).with_outputs("rejections", main="kept")
        )
        kept = (split.alone, decided.kept) | "MergeKept" >> beam.Flatten()
        return _Decided(kept, decided.rejections)


class KeepSimilarPairs(beam.PTransform):
    """Pair halves ((u, v), shingles) in, one from each end; the pair (u, v) out when its exact
    shingle Jaccard reaches the threshold (None: every candidate pair, trusting LSH)."""

    def __init__(self, min_jaccard: float | None):
        super().__init__()
        self.min_jaccard = min_jaccard

    def expand(self, halves):
        return (
            halves
            | "GroupPairs" >> beam.GroupByKey()
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
        current = edges | "OrientEdges" >> beam.Map(components.toward_larger)
        for r in range(self.rounds):
            current = (
                current
                | f"LargeStar{r}Neighbours" >> beam.FlatMap(components.both_directions)
                | f"LargeStar{r}Group" >> beam.GroupByKey()
                | f"LargeStar{r}" >> beam.FlatMapTuple(components.large_star)
                | f"SmallStar{r}Orient" >> beam.Map(components.toward_larger)
                | f"SmallStar{r}Group" >> beam.GroupByKey()
                | f"SmallStar{r}" >> beam.FlatMapTuple(components.small_star)
            )
        node_to_label = (
            current
            | "LabelNeighbours" >> beam.FlatMap(components.both_directions)
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

    def __init__(self, config: ParagraphDedupeConfig):
        super().__init__()
        self.config = config

    def expand(self, batches):
        doc_to_spans = (
            batches
            | "KeyByParagraph" >> beam.FlatMap(_paragraph_records, self.config.scope)
            | "GroupParagraphs" >> beam.GroupByKey()
            | "RepeatedOccurrences" >> beam.FlatMapTuple(_repeated_occurrences)
            | "GroupByDocument" >> beam.GroupByKey()
            | "SortSpans" >> beam.MapTuple(lambda key, spans: (key, sorted(spans)))
        )
        span_rejections = doc_to_spans | "LedgerRows" >> beam.MapTuple(_span_rejection)
        return doc_to_spans, span_rejections


class _SketchBatch(beam.DoFn):
    def __init__(self, config: DedupeConfig):
        self.config = config
        self.hasher = None

    def setup(self):
        self.hasher = make_hasher(self.config)

    def process(self, batch) -> Iterator[SketchBatch]:
        sketches = sketch_batch(list(batch), self.config, self.hasher)
        if sketches:
            yield sketches[0].node, sketches


class _KeepFirstMember(beam.DoFn):
    """A group's first member by the keep rule stands for the group: (batch key, (node, cluster size))
    for it, (batch key, (node, None)) for every other member, which also gets a ledger row."""

    def __init__(self, filter_name: str, reason: str):
        self.filter_name, self.reason = filter_name, reason
        self.removed = Metrics.counter(STAGE, reason)

    def process(self, keyed_group) -> Iterator[Any]:
        members = sorted(keyed_group[1])
        if len(members) == 1:
            return
        kept_keep, _, kept_node, kept_batch = members[0]
        cluster_size = sum(represents for _, represents, _, _ in members)
        yield kept_batch, (kept_node, cluster_size)
        for keep, _, node, batch in members[1:]:
            self.removed.inc()
            yield batch, (node, None)
            yield TaggedOutput(
                "rejections",
                _duplicate_rejection(
                    KeepKey(*keep), KeepKey(*kept_keep), cluster_size, self.filter_name, self.reason
                ),
            )


class _SplitCandidates(beam.DoFn):
    """Per batch: documents with no candidate pair stay (without their MinHash arrays, which nothing
    later reads); a candidate leaves as (node, sketch) and sends one half per pair to the pair check."""

    def process(self, keyed) -> Iterator[Any]:
        batch_key, g = keyed
        neighbours: dict[int, set[int]] = {}
        for node, other in g["route"]:
            neighbours.setdefault(node, set()).add(other)
        for sketches in g["batch"]:
            alone = []
            for s in sketches:
                if s.node not in neighbours:
                    alone.append(_without_minhash(s))
                    continue
                yield TaggedOutput("candidates", (s.node, s))
                for other in neighbours[s.node]:
                    pair = (s.node, other) if s.node < other else (other, s.node)
                    yield TaggedOutput("halves", (pair, s.shingles))
            if alone:
                yield batch_key, alone


class _KeepFirstSketch(beam.DoFn):
    """A cluster's first sketch by the keep rule survives, as a batch of one, standing for the cluster."""

    def __init__(self):
        self.removed = Metrics.counter(STAGE, "near_duplicate")

    def process(self, keyed_group) -> Iterator[Any]:
        members = sorted(keyed_group[1], key=lambda s: s.keep)
        kept = members[0]
        cluster_size = sum(s.represents for s in members)
        yield kept.node, [_without_minhash(kept._replace(represents=cluster_size))]
        for s in members[1:]:
            self.removed.inc()
            yield TaggedOutput(
                "rejections",
                _duplicate_rejection(
                    s.keep,
                    kept.keep,
                    cluster_size,
                    MINHASH_FILTER,
                    "near_duplicate",
                    score=_similarity_to_kept(s, kept),
                ),
            )


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
    batch: SketchBatch, key_of: Callable[[DocSketch], Any]
) -> Iterator[tuple[Any, MemberRecord]]:
    batch_key, sketches = batch
    for s in sketches:
        key = key_of(s)
        if key is not None:
            yield key, (tuple(s.keep), s.represents, s.node, batch_key)


def _apply_decisions(batch_key: int, g: dict) -> Iterator[SketchBatch]:
    """The batch without its removed members, kept representatives carrying their cluster size."""
    size_of = dict(g["decision"])
    for sketches in g["batch"]:
        kept = [
            s if s.node not in size_of else s._replace(represents=size_of[s.node])
            for s in sketches
            if s.node not in size_of or size_of[s.node] is not None
        ]
        if kept:
            yield batch_key, kept


def _band_rows(batch: SketchBatch, scope: Scope, shards: int) -> Iterator[tuple[tuple[str, int], bytes]]:
    batch_key, sketches = batch
    yield from band_rows_by_shard(sketches, batch_key, scope, shards).items()


def _candidate_routes(_, packed: Iterable[bytes]) -> Iterator[tuple[int, tuple[int, int]]]:
    """(batch key, (node, other node)) for both ends of every candidate pair, so each batch learns
    which of its documents are candidates and with whom."""
    for (u, batch_u), (v, batch_v) in bucket_pairs(packed):
        yield batch_u, (u, v)
        yield batch_v, (v, u)


def _without_minhash(sketch: DocSketch) -> DocSketch:
    return sketch._replace(signature=None, band_keys=None, shingles=None)


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


def _key_by_component(node: int, g: dict) -> Iterator[tuple[int, DocSketch]]:
    labels = list(g["component"])
    for sketch in g["sketch"]:
        yield (labels[0] if labels else node), sketch


def _similarity_to_kept(sketch: DocSketch, kept: DocSketch) -> float:
    if sketch.shingles is not None and kept.shingles is not None:
        return exact_jaccard(_uint32(sketch.shingles), _uint32(kept.shingles))
    return estimated_jaccard(_uint32(sketch.signature), _uint32(kept.signature))


def _uint32(raw: bytes) -> np.ndarray:
    return np.frombuffer(raw, dtype=np.uint32)


def _cluster_records(_, sketches: list[DocSketch]) -> Iterator[tuple[DocKey, dict[str, Any]]]:
    for s in sketches:
        yield (s.source, s.doc_id), {"cluster_id": s.content_hash, "cluster_size": s.represents}


def _paragraph_records(batch: SketchBatch, scope: Scope) -> Iterator[tuple[Any, tuple]]:
    for s in batch[1]:
        for p in s.paragraphs:
            key = (s.source, p.digest) if scope == "per_source" else p.digest
            yield key, (tuple(s.keep), p.start, p.end)


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
