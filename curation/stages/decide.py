"""Phase two, first step: decide from stored scores. Per-document thresholds are applied to each pool;
top-fraction rules (DCLM's "keep the top 10% of this source by classifier score") need a cutoff computed
over the whole source, which travels as a small side input. Reading the pools, this step also settles
duplicate ids (curation/stages/ids.py) and locates every document for the verdicts (verdicts.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
from apache_beam.metrics import Metrics

from curation.batching import BATCH_DOCUMENTS, batched
from curation.chain import QUALITY_STAGE, Chain, scores_of
from curation.document import Document, Quarantine, Rejection, stable_id
from curation.errors import InputError
from curation.readers.records import place
from curation.stages.curate import read_pool
from curation.stages.ids import DUPLICATE_ID
from curation.stages.verdicts import KEPT
from curation.stages.verdicts import REJECTED as REJECTED_VERDICT
from filters.quality_classifier import kept_by_cutoff, top_fraction_cutoff
from mixes.manifest import SourceConfig

REJECTED = "rejected"
# ((source, id), stage record) for the verdicts; ((source, id), (pool ordinal, position)) locators; the
# duplicate-id quarantine rows and their pool parts.
SAID = "said"
LOCATED = "located"
QUARANTINED = "quarantined"
PARTS = "parts"


BELOW_TOP_FRACTION = "below_top_fraction"


def top_fraction_rules(chain: Chain) -> list[tuple[Any, float]]:
    """(filter, fraction kept) for each filter in the chain that keeps a top fraction of its source."""
    return [
        (step, step.config.keep_top_fraction)
        for step in chain.filters()
        if getattr(step.config, "keep_top_fraction", None) is not None
    ]


def ranking_score(step: Any, doc: Document) -> float:
    """The score a top-fraction rule ranks by: the filter's own headline score for that rule."""
    return float(step.reason_score(scores_of(doc, step.name), BELOW_TOP_FRACTION))


class _PoolsFn(beam.DoFn):
    """Reads a pool joined to its repeated ids. Both passes over the pools share it: the ranking pass that
    top-fraction cutoffs come from, and the deciding pass that takes them as a side input. So only the pool
    records wait for the cutoffs, never the documents (the local runner would hold every one of them)."""

    def __init__(self, sources: dict[str, SourceConfig], input_uris: list[str]):
        self._sources = sources
        self._input_uris = input_uris

    def setup(self):
        # Deciding needs the filters' thresholds, not their models: no setup() calls here.
        self._chains = {name: Chain.from_specs(s.filters) for name, s in self._sources.items()}
        self._rules = {name: top_fraction_rules(c) for name, c in self._chains.items()}

    def _documents(self, joined: dict[str, list]) -> Iterator[tuple[int, Document, dict | None]]:
        """(position, document, its record as a later occurrence of an id or None) in pool order; under the
        source's `ids: derive` a later occurrence is renamed in place."""
        (pool,) = joined["pool"]
        duplicates = dict(joined["duplicate"])
        source = self._sources[pool.source]
        for position, doc in enumerate(read_pool(pool)):
            duplicate = duplicates.get(position)
            if duplicate is not None and source.ids == "derive":
                prov = doc.provenance
                doc.id = stable_id(source.name, prov.uri, prov.line if prov.line is not None else prov.offset, source.id_root)
            yield position, doc, duplicate


class _RankPoolFn(_PoolsFn):
    """((source, filter), (id, score)) for each document a top-fraction rule ranks: those that pass every
    per-document threshold."""

    def process(self, element: tuple[int, dict[str, list]]):
        _, joined = element
        (pool,) = joined["pool"]
        rules = self._rules[pool.source]
        if not rules:
            return
        chain = self._chains[pool.source]
        derive = self._sources[pool.source].ids == "derive"
        for _, doc, duplicate in self._documents(joined):
            if (duplicate is None or derive) and chain.decide(doc) is None:
                for step, _ in rules:
                    yield (doc.source, step.name), (doc.id, ranking_score(step, doc))


class _DecidePoolFn(_PoolsFn):
    def __init__(self, sources: dict[str, SourceConfig], input_uris: list[str]):
        super().__init__(sources, input_uris)
        self._rejected = Metrics.counter(QUALITY_STAGE, "documents_rejected")

    def process(self, element: tuple[int, dict[str, list]], cutoffs: dict | None = None):
        ordinal, joined = element
        (pool,) = joined["pool"]
        source = self._sources[pool.source]
        chain = self._chains[pool.source]
        for batch in batched(self._documents(joined), BATCH_DOCUMENTS):
            kept = []
            for position, doc, duplicate in batch:
                if duplicate is not None:
                    yield from self._settle_duplicate(source, ordinal, position, doc, duplicate)
                    if source.ids != "derive":
                        continue
                key = (doc.source, doc.id)
                yield beam.pvalue.TaggedOutput(LOCATED, (key, (ordinal, position)))
                rejection = chain.decide(doc)
                if rejection is not None:
                    self._rejected.inc()
                    Metrics.counter(QUALITY_STAGE, rejection.reason).inc()
                else:
                    rejection = self._below_top_fraction(doc, cutoffs)
                if rejection is None:
                    kept.append(doc)
                    yield beam.pvalue.TaggedOutput(SAID, (key, (QUALITY_STAGE, KEPT, {})))
                else:
                    yield beam.pvalue.TaggedOutput(REJECTED, rejection)
                    yield beam.pvalue.TaggedOutput(SAID, (key, (QUALITY_STAGE, REJECTED_VERDICT, rejection.to_dict())))
            if kept:
                yield kept

    def _settle_duplicate(self, source: SourceConfig, ordinal: int, position: int, doc: Document, duplicate: dict):
        """Quarantine a later occurrence of an id, or fail the run under `on_error: fail`; under `ids: derive`
        it was already renamed (`_documents`)."""
        prov = doc.provenance
        first_ordinal, _, first_line, first_offset = duplicate["first"]
        first = f"{self._input_uris[first_ordinal]} {place(first_line, first_offset)}"
        Metrics.counter(QUALITY_STAGE, DUPLICATE_ID).inc()
        if source.ids == "derive":
            return
        if source.on_error == "fail":
            raise InputError(
                f"{prov.uri}: {place(prov.line, prov.offset)}: duplicate id {doc.id!r} (first at {first}); fix the input or give source "
                f"{source.name!r} `ids: derive`"
            )
        quarantine = Quarantine(source.name, prov.uri, DUPLICATE_ID, prov.line, prov.offset, f"id {doc.id!r} first at {first}")
        yield beam.pvalue.TaggedOutput(QUARANTINED, quarantine.to_dict())
        yield beam.pvalue.TaggedOutput(PARTS, (ordinal, (position, doc.id, (DUPLICATE_ID, {"reason": DUPLICATE_ID}))))

    def _below_top_fraction(self, doc: Document, cutoffs: dict) -> Rejection | None:
        for step, fraction in self._rules[doc.source]:
            cutoff = cutoffs.get((doc.source, step.name))
            score = ranking_score(step, doc)
            if not kept_by_cutoff(doc.id, score, cutoff):
                Metrics.counter(QUALITY_STAGE, BELOW_TOP_FRACTION).inc()
                return Rejection(
                    doc_id=doc.id,
                    source=doc.source,
                    stage=QUALITY_STAGE,
                    filter=step.name,
                    reason=BELOW_TOP_FRACTION,
                    score=score,
                    detail={"keep_top_fraction": fraction, "cutoff_score": cutoff[0] if cutoff else None},
                    uri=doc.provenance.uri if doc.provenance else None,
                )
        return None


class QualityDecided(NamedTuple):
    # Batches of documents that passed every quality rule, for dedupe and decontamination.
    kept: beam.PCollection
    # Ledger rows (Rejection) and duplicate-id quarantine rows (dicts).
    rejections: beam.PCollection
    quarantined: beam.PCollection
    # For the verdicts: stage records and locators by (source, id), duplicate-id parts by pool ordinal.
    said: beam.PCollection
    located: beam.PCollection
    parts: beam.PCollection


class DecideQuality(beam.PTransform):
    """{"pool": (ordinal, PoolFile), "duplicate": (ordinal, (position, duplicate))} -> QualityDecided."""

    def __init__(self, sources: dict[str, SourceConfig], input_uris: list[str]):
        super().__init__()
        self._sources = sources
        self._input_uris = input_uris

    def expand(self, pools_and_duplicates):
        pools = pools_and_duplicates | "JoinDuplicatesToPools" >> beam.CoGroupByKey()
        # Without a top-fraction rule there is nothing to rank: no pass over the pools waits for cutoffs.
        cutoffs = {}
        if any(top_fraction_rules(Chain.from_specs(s.filters)) for s in self._sources.values()):
            ranked = (
                pools
                | "RankForTopFractions" >> beam.ParDo(_RankPoolFn(self._sources, self._input_uris))
                | "GroupRankKeysBySourceAndFilter" >> beam.GroupByKey()
                | "ComputeCutoffs"
                >> beam.MapTuple(lambda key, ranked: (key, top_fraction_cutoff(ranked, self._fraction(key))))
            )
            cutoffs["cutoffs"] = beam.pvalue.AsDict(ranked)
        decided = pools | "ApplyThresholds" >> beam.ParDo(
            _DecidePoolFn(self._sources, self._input_uris), **cutoffs
        ).with_outputs(REJECTED, SAID, LOCATED, QUARANTINED, PARTS, main="kept")
        return QualityDecided(
            decided.kept, decided[REJECTED], decided[QUARANTINED], decided[SAID], decided[LOCATED], decided[PARTS]
        )

    def _fraction(self, key: tuple[str, str]) -> float:
        source, filter_name = key
        for step, fraction in top_fraction_rules(Chain.from_specs(self._sources[source].filters)):
            if step.name == filter_name:
                return fraction
        raise KeyError(key)
