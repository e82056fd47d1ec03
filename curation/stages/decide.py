"""Phase two, first step: decide from stored scores. Per-document thresholds are applied to each pool;
top-fraction rules (DCLM's "keep the top 10% of this source by classifier score") need a cutoff computed
over the whole source, which travels as a small side input."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.metrics import Metrics

from curation.batching import BATCH_DOCUMENTS, batched
from curation.chain import QUALITY_STAGE, Chain, scores_of
from curation.document import Document, Rejection
from curation.stages.curate import PoolFile, read_pool
from filters.quality_classifier import kept_by_cutoff, top_fraction_cutoff
from mixes.manifest import SourceConfig

REJECTED = "rejected"
RANKED = "ranked"


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
        for batch in batched(read_pool(pool), BATCH_DOCUMENTS):
            kept = []
            for doc in batch:
                rejection = chain.decide(doc)
                if rejection is None:
                    kept.append(doc)
                    for step, _ in rules:
                        yield beam.pvalue.TaggedOutput(RANKED, ((doc.source, step.name), (doc.id, ranking_score(step, doc))))
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
            for step, fraction in self._rules[doc.source]:
                cutoff = cutoffs.get((doc.source, step.name))
                score = ranking_score(step, doc)
                if not kept_by_cutoff(doc.id, score, cutoff):
                    rejection = Rejection(
                        doc_id=doc.id,
                        source=doc.source,
                        stage=QUALITY_STAGE,
                        filter=step.name,
                        reason=BELOW_TOP_FRACTION,
                        score=score,
                        detail={"keep_top_fraction": fraction, "cutoff_score": cutoff[0] if cutoff else None},
                        uri=doc.provenance.uri if doc.provenance else None,
                    )
                    break
            if rejection is None:
                kept.append(doc)
            else:
                Metrics.counter(QUALITY_STAGE, BELOW_TOP_FRACTION).inc()
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
            | "ComputeCutoffs" >> beam.MapTuple(lambda key, ranked: (key, top_fraction_cutoff(ranked, self._fraction(key))))
        )
        after_cut = decided.kept | "ApplyTopFraction" >> beam.ParDo(
            _ApplyCutoffsFn(self._sources), cutoffs=beam.pvalue.AsDict(cutoffs)
        ).with_outputs(REJECTED, main="kept")
        rejected = (decided[REJECTED], after_cut[REJECTED]) | "AllQualityRejections" >> beam.Flatten()
        return after_cut.kept, rejected

    def _fraction(self, key: tuple[str, str]) -> float:
        source, filter_name = key
        for step, fraction in top_fraction_rules(Chain.from_specs(self._sources[source].filters)):
            if step.name == filter_name:
                return fraction
        raise KeyError(key)
