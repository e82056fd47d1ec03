"""Phase two, first step: decide from stored scores. Per-document thresholds are applied to each pool;
top-fraction rules (DCLM's "keep the top 10% of this source by classifier score") need a cutoff computed
over the whole source, which travels as a small side input."""

from __future__ import annotations

import math
from typing import Iterable

import apache_beam as beam
from apache_beam.metrics import Metrics

from curation.chain import QUALITY_STAGE, Chain, scores_of
from curation.document import Document, Rejection
from curation.stages.curate import PoolFile, _batches, read_pool
from mixes.manifest import SourceConfig

BATCH_DOCUMENTS = 512
REJECTED = "rejected"
RANKED = "ranked"


def top_fraction_rules(chain: Chain) -> list[tuple[str, str, float]]:
    """(filter name, score signal, fraction kept) for each filter in the chain that keeps a top fraction."""
    rules = []
    for step in chain.filters():
        fraction = getattr(step.config, "keep_top_fraction", None)
        if fraction is not None:
            rules.append((step.name, step.ranking_signal, fraction))
    return rules


def rank_key(score: float, doc_id: str) -> tuple[float, str]:
    """Higher scores first; ties broken by document id so the cut never depends on arrival order."""
    return (-score, doc_id)


def cutoff_for(ranked: Iterable[tuple[float, str]], fraction: float) -> tuple[float, str] | None:
    """The rank key of the last document kept when keeping ceil(fraction * n) of them."""
    keys = sorted(ranked)
    if not keys:
        return None
    keep = max(1, math.ceil(fraction * len(keys)))
    return keys[keep - 1]


class _DecidePoolFn(beam.DoFn):
    def __init__(self, sources: dict[str, SourceConfig]):
        self._sources = sources
        self._rejected = Metrics.counter(QUALITY_STAGE, "documents_rejected")

    def setup(self):
        # Deciding needs the filters' thresholds, not their models: no setup() calls here.
        self._chains = {name: Chain.from_specs(s.filters) for name, s in self._sources.items()}
        self._rules = {name: top_fraction_rules(c) for name, c in self._chains.items()}

    def process(self, pool: PoolFile):
        chain = self._chains[pool.source]
        rules = self._rules[pool.source]
        for batch in _batches(read_pool(pool), BATCH_DOCUMENTS):
            kept = []
            for doc in batch:
                rejection = chain.decide(doc)
                if rejection is None:
                    kept.append(doc)
                    for filter_name, signal, _ in rules:
                        score = float(scores_of(doc, filter_name)[signal])
                        yield beam.pvalue.TaggedOutput(RANKED, ((doc.source, filter_name), rank_key(score, doc.id)))
                else:
                    self._rejected.inc()
                    Metrics.counter(QUALITY_STAGE, rejection.reason).inc()
                    yield beam.pvalue.TaggedOutput(REJECTED, rejection)
            if kept:
                yield kept


class _ApplyCutoffsFn(beam.DoFn):
    def __init__(self, sources: dict[str, SourceConfig]):
        self._sources = sources

    def setup(self):
        chains = {name: Chain.from_specs(s.filters) for name, s in self._sources.items()}
        self._rules = {name: top_fraction_rules(c) for name, c in chains.items()}

    def process(self, batch: list[Document], cutoffs: dict):
        kept = []
        for doc in batch:
            rejection = None
            for filter_name, signal, fraction in self._rules[doc.source]:
                cutoff = cutoffs.get((doc.source, filter_name))
                score = float(scores_of(doc, filter_name)[signal])
                if cutoff is not None and rank_key(score, doc.id) > cutoff:
                    rejection = Rejection(
                        doc_id=doc.id,
                        source=doc.source,
                        stage=QUALITY_STAGE,
                        filter=filter_name,
                        reason="below_top_fraction",
                        score=score,
                        detail={"keep_top_fraction": fraction, "cutoff_score": -cutoff[0]},
                        uri=doc.provenance.uri if doc.provenance else None,
                    )
                    break
            if rejection is None:
                kept.append(doc)
            else:
                Metrics.counter(QUALITY_STAGE, "below_top_fraction").inc()
                yield beam.pvalue.TaggedOutput(REJECTED, rejection)
        if kept:
            yield kept


class DecideQuality(beam.PTransform):
    """PoolFile records -> (batches of kept documents, quality rejections)."""

    def __init__(self, sources: dict[str, SourceConfig]):
        super().__init__()
        self._sources = sources

    def expand(self, pools):
        decided = pools | "ApplyThresholds" >> beam.ParDo(_DecidePoolFn(self._sources)).with_outputs(
            REJECTED, RANKED, main="kept"
        )
        cutoffs = (
            decided[RANKED]
            | "GroupRankKeysBySourceAndFilter" >> beam.GroupByKey()
            | "ComputeCutoffs" >> beam.MapTuple(lambda key, ranked: (key, cutoff_for(ranked, self._fraction(key))))
        )
        after_cut = decided.kept | "ApplyTopFraction" >> beam.ParDo(
            _ApplyCutoffsFn(self._sources), cutoffs=beam.pvalue.AsDict(cutoffs)
        ).with_outputs(REJECTED, main="kept")
        rejected = (decided[REJECTED], after_cut[REJECTED]) | "AllQualityRejections" >> beam.Flatten()
        return after_cut.kept, rejected

    def _fraction(self, key: tuple[str, str]) -> float:
        source, filter_name = key
        for name, _, fraction in top_fraction_rules(Chain.from_specs(self._sources[source].filters)):
            if name == filter_name:
                return fraction
        raise KeyError(key)
