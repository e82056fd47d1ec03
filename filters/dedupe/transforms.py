"""Beam stages for deduplication: exact text, URL, MinHash near-duplicates and repeated paragraphs.

Documents are reduced to sketches once (`SketchDocuments`); every later shuffle moves sketches or
smaller records, never text. Each method keeps one copy per group by the stable keep rule and emits a
ledger row for every other copy; paragraph repeats come out as span edits (Dolma style).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics
from apache_beam.pvalue import AsDict

from curation.document import Rejection
from filters.dedupe import components
from filters.dedupe.config import DedupeConfig, MinHashConfig, ParagraphDedupeConfig, Scope
from filters.dedupe.minhash import estimated_jaccard, exact_jaccard
from filters.dedupe.sketch import DocSketch, make_hasher, sketch_batch

STAGE = "dedupe"
EXACT_FILTER = "exact_dedupe_v1"
URL_FILTER = "url_dedupe_v1"
MINHASH_FILTER = "minhash_v1"
PARAGRAPH_FILTER = "paragraph_dedupe_v1"

# Buckets up to this size are linked as cliques (at most 28 pairs), larger ones as star plus chain.
_MAX_CLIQUE_BUCKET = 8

DocKey = tuple[str, str]  # (source, doc id): ids are unique only within a source


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
        clusters = survivors | "ReportClusters" >> beam.Map(_cluster_record)
        return DedupeResult(rejections, clusters, edits, span_rejections)


class _Decided(NamedTuple):
    kept: beam.PCollection
    rejections: beam.PCollection


class KeepOnePerKey(beam.PTransform):
    """Group sketches by a key (None passes through) and keep the first of each group by the keep rule."""

    def __init__(self, key_of: Callable[[DocSketch], Any], filter_name: str, reason: str):
        super().__init__()
        self.key_of, self.filter_name, self.reason = key_of, filter_name, reason

    def expand(self, sketches):
        keyed = sketches | "KeyOrPass" >> beam.ParDo(_KeyOrPass(self.key_of)).with_outputs(
            "unkeyed", main="keyed"
        )
        decided = (
            keyed.keyed
            | "GroupByKey" >> beam.GroupByKey()
            | "KeepFirstByRule"
            >> beam.ParDo(_KeepFirst(self.filter_name, self.reason)).with_outputs("rejections", main="kept")
        )
        kept = (decided.kept, keyed.unkeyed) | "MergeKept" >> beam.Flatten()
        return _Decided(kept, decided.rejections)


class DeduplicateMinHash(beam.PTransform):
    """LSH band buckets give candidate pairs, connected components give clusters, the keep rule
    picks each cluster's representative; the rest are near duplicates."""

    def __init__(self, config: MinHashConfig):
        super().__init__()
        self.config = config

    def expand(self, sketches):
        signed = sketches | "SplitSigned" >> beam.ParDo(_SignedOrPass()).with_outputs(
            "unsigned", main="signed"
        )
        node_to_sketch = signed.signed | "KeyByNode" >> beam.Map(lambda s: (s.node, s))
        candidate_pairs = (
            signed.signed
            | "KeyByBand" >> beam.FlatMap(_band_records, scope=self.config.scope)
            | "GroupBuckets" >> beam.GroupByKey()
            | "LinkBucketMembers" >> beam.FlatMapTuple(_bucket_edges)
            | "DistinctPairs" >> beam.Distinct()
        )
        if self.config.verify_jaccard is not None:
            candidate_pairs = candidate_pairs | "VerifyJaccard" >> KeepSimilarPairs(
                node_to_sketch, self.config.verify_jaccard
            )
        node_to_component = candidate_pairs | "FindComponents" >> FindConnectedComponents(
            self.config.component_rounds
        )
        decided = (
            {"sketch": node_to_sketch, "component": node_to_component}
            | "JoinComponents" >> beam.CoGroupByKey()
            | "KeyByComponent" >> beam.FlatMapTuple(_key_by_component)
            | "GroupClusters" >> beam.GroupByKey()
            | "KeepFirstByRule"
            >> beam.ParDo(_KeepFirst(MINHASH_FILTER, "near_duplicate", _similarity_to_kept)).with_outputs(
                "rejections", main="kept"
            )
        )
        kept = (decided.kept, signed.unsigned) | "MergeKept" >> beam.Flatten()
        return _Decided(kept, decided.rejections)


class KeepSimilarPairs(beam.PTransform):
    """Drop candidate pairs whose exact shingle Jaccard is below the threshold (LSH false positives)."""

    def __init__(self, node_to_sketch, min_jaccard: float):
        super().__init__()
        self.node_to_sketch, self.min_jaccard = node_to_sketch, min_jaccard

    def expand(self, pairs):
        node_to_shingles = self.node_to_sketch | "Shingles" >> beam.MapTuple(lambda n, s: (n, s.shingles))
        half_joined = (
            {"pair": pairs, "shingles": node_to_shingles}
            | "JoinFirst" >> beam.CoGroupByKey()
            | "CarryFirst" >> beam.FlatMapTuple(_carry_shingles)
        )
        return (
            {"half": half_joined, "shingles": node_to_shingles}
            | "JoinSecond" >> beam.CoGroupByKey()
            | "KeepSimilar" >> beam.FlatMap(_similar_pairs, self.min_jaccard)
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

    def expand(self, sketches):
        doc_to_spans = (
            sketches
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

    def process(self, batch) -> Iterator[DocSketch]:
        yield from sketch_batch(list(batch), self.config, self.hasher)


class _KeyOrPass(beam.DoFn):
    def __init__(self, key_of):
        self.key_of = key_of

    def process(self, sketch) -> Iterator[Any]:
        key = self.key_of(sketch)
        if key is None:
            yield beam.pvalue.TaggedOutput("unkeyed", sketch)
        else:
            yield key, sketch


class _SignedOrPass(beam.DoFn):
    def process(self, sketch) -> Iterator[Any]:
        if sketch.band_keys is None:
            yield beam.pvalue.TaggedOutput("unsigned", sketch)
        else:
            yield sketch


class _KeepFirst(beam.DoFn):
    """The group's first sketch by the keep rule survives, standing for the whole group."""

    def __init__(
        self, filter_name: str, reason: str, score: Callable[[DocSketch, DocSketch], float] | None = None
    ):
        self.filter_name, self.reason, self.score = filter_name, reason, score
        self.removed = Metrics.counter(STAGE, reason)

    def process(self, keyed_group) -> Iterator[Any]:
        members = sorted(keyed_group[1], key=lambda s: s.keep)
        kept = members[0]
        cluster_size = sum(s.represents for s in members)
        detail = {
            "kept_id": kept.doc_id,
            "kept_source": kept.source,
            "cluster_id": kept.content_hash,
            "cluster_size": cluster_size,
        }
        yield kept._replace(represents=cluster_size)
        for s in members[1:]:
            self.removed.inc()
            yield beam.pvalue.TaggedOutput(
                "rejections",
                Rejection(
                    doc_id=s.doc_id,
                    source=s.source,
                    stage=STAGE,
                    filter=self.filter_name,
                    reason=self.reason,
                    score=self.score(s, kept) if self.score else None,
                    detail=dict(detail),
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


def _digest_key(field: str, scope: Scope) -> Callable[[DocSketch], Any]:
    def key_of(sketch: DocSketch):
        digest = getattr(sketch, field)
        if digest is None:
            return None
        return (sketch.source, digest) if scope == "per_source" else digest

    return key_of


def _band_records(sketch: DocSketch, scope: Scope) -> Iterator[tuple[tuple, int]]:
    source = sketch.source if scope == "per_source" else ""
    for band, key in enumerate(np.frombuffer(sketch.band_keys, dtype=np.uint64).tolist()):
        yield (source, band, key), sketch.node


def _bucket_edges(_, nodes: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Every pair of a small bucket, so a pair that fails the Jaccard check cannot cut a third member
    off; a large bucket (boilerplate) is linked as a star plus a chain, so its edges stay linear."""
    members = sorted(set(nodes))
    if len(members) <= _MAX_CLIQUE_BUCKET:
        yield from itertools.combinations(members, 2)
        return
    for i, v in enumerate(members[1:], start=1):
        yield members[0], v
        if i > 1:
            yield members[i - 1], v


def _carry_shingles(u: int, g: dict) -> Iterator[tuple[int, tuple[int, Any]]]:
    (shingles_u,) = list(g["shingles"])
    for v in g["pair"]:
        yield v, (u, shingles_u)


def _relabel(node_label: tuple[int, int], remap: dict[int, int]) -> tuple[int, int]:
    node, lab = node_label
    return node, remap.get(lab, lab)


def _carry_label(u: int, g: dict) -> Iterator[tuple[int, int]]:
    (label_u,) = list(g["label"])
    for v in g["edge"]:
        yield v, label_u


def _similar_pairs(keyed: tuple[int, dict], min_jaccard: float) -> Iterator[tuple[int, int]]:
    v, g = keyed
    (shingles_v,) = list(g["shingles"])
    for u, shingles_u in g["half"]:
        if exact_jaccard(_uint32(shingles_u), _uint32(shingles_v)) >= min_jaccard:
            yield u, v
        else:
            Metrics.counter(STAGE, "candidate_pair_below_jaccard").inc()


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


def _cluster_record(sketch: DocSketch) -> tuple[DocKey, dict[str, Any]]:
    return (sketch.source, sketch.doc_id), {
        "cluster_id": sketch.content_hash,
        "cluster_size": sketch.represents,
    }


def _paragraph_records(sketch: DocSketch, scope: Scope) -> Iterator[tuple[Any, tuple]]:
    for p in sketch.paragraphs:
        key = (sketch.source, p.digest) if scope == "per_source" else p.digest
        yield key, (sketch.keep, p.start, p.end)


def _repeated_occurrences(_, occurrences: Iterable[tuple]) -> Iterator[tuple[DocKey, tuple[int, int]]]:
    ordered = sorted(occurrences)
    for keep, start, end in ordered[1:]:
        Metrics.counter(STAGE, "duplicate_paragraph").inc()
        yield (keep.source, keep.doc_id), (start, end)


def _span_rejection(key: DocKey, spans: list[tuple[int, int]]) -> Rejection:
    return Rejection(
        doc_id=key[1],
        source=key[0],
        stage=STAGE,
        filter=PARAGRAPH_FILTER,
        reason="duplicate_paragraph",
        detail={"spans": [list(s) for s in spans]},
    )
