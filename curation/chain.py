"""A source's filter chain: modifiers rewrite text in declared order, filters score the text as it stands
at their place in the chain, and decisions are taken later from the stored scores (Dolma's tagger/mixer
split), so thresholds can change without re-scoring."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from curation.document import Document, Rejection
from filters.base import TextView
from filters.registry import build_chain, plugin_of
from filters.words import WORDS

QUALITY_STAGE = "quality"


def decision_fields(config: Any) -> set[str]:
    """Config fields that only decide (thresholds), so changing them must not invalidate stored scores.

    By the naming convention every filter follows: `min_*`, `max_*` and `keep_top_fraction` are
    thresholds; a filter can list more in a `DECISION_FIELDS` class attribute.
    """
    names = {f.name for f in dataclasses.fields(config)}
    extra = set(getattr(type(config), "DECISION_FIELDS", ()))
    return {n for n in names if n.startswith(("min_", "max_")) or n == "keep_top_fraction"} | (extra & names)


def scoring_identity(filter_specs: list[dict[str, Any]]) -> list[Any]:
    """What determines the scores a chain stores: each step's versioned name and its non-threshold config,
    and for a filter from an installed package, that package's name and version.

    A gate's thresholds count too: they decide which documents later steps score at all.
    """
    identity = []
    for spec, step in zip(filter_specs, build_chain(filter_specs)):
        cfg = dataclasses.asdict(step.config)
        gate = bool(spec.get("gate", False))
        if not gate:
            for name in decision_fields(step.config):
                cfg.pop(name, None)
        plugin = plugin_of(step.name)
        identity.append((step.name, cfg, gate) + ((plugin.distribution, plugin.version) if plugin else ()))
    return identity


@dataclass
class Chain:
    steps: list[Any]
    # Per step: documents it rejects are not scored by later steps (datatrove's early exit, opt-in).
    gates: list[bool]

    @classmethod
    def from_specs(cls, specs: list[dict[str, Any]]) -> Chain:
        return cls(build_chain(specs), [bool(s.get("gate", False)) for s in specs])

    def setup(self) -> None:
        for step in self.steps:
            step.setup()

    def score_batch(self, docs: list[Document]) -> None:
        """Score every document in place (text after modifiers; scores into `attributes`).

        A document a gate rejects keeps the scores measured so far and is not scored further: its
        decision is already taken at the gate, whatever the later thresholds are.
        """
        WORDS.start_afresh_if_full()  # between batches, so no batch mixes ids of two generations
        live = list(range(len(docs)))
        views = [TextView(d.text, d.metadata) for d in docs]
        for step, gate in zip(self.steps, self.gates):
            if hasattr(step, "modify"):
                for i in live:
                    new_text, measurements = step.modify(views[i])
                    _store(docs[i], step.name, measurements)
                    if new_text != docs[i].text:
                        docs[i].text = new_text
                        views[i] = TextView(new_text, docs[i].metadata)
                continue
            if hasattr(step, "score_batch"):
                scored = step.score_batch([views[i] for i in live])
            else:
                scored = [step.score(views[i]) for i in live]
            for i, scores in zip(live, scored):
                _store(docs[i], step.name, scores)
            if gate:
                live = [i for i, scores in zip(live, scored) if step.reject_reason(scores) is None]

    def filters(self) -> list[Any]:
        return [s for s in self.steps if hasattr(s, "reject_reason")]

    def decide(self, doc: Document) -> Rejection | None:
        """The first filter in chain order whose stored scores reject the document, as a ledger row."""
        by_step = _scores_by_step(doc)
        for step in self.filters():
            scores = by_step.get(step.name, {}) if "/" not in step.name else scores_of(doc, step.name)
            reason = step.reject_reason(scores)
            if reason is not None:
                return Rejection(
                    doc_id=doc.id,
                    source=doc.source,
                    stage=QUALITY_STAGE,
                    filter=step.name,
                    reason=reason,
                    score=_headline_score(step, scores, reason),
                    detail={"scores": scores},
                    uri=doc.provenance.uri if doc.provenance else None,
                )
        return None


def scores_of(doc: Document, step_name: str) -> dict[str, float]:
    prefix = step_name + "/"
    return {k[len(prefix) :]: v for k, v in doc.attributes.items() if k.startswith(prefix)}


def _scores_by_step(doc: Document) -> dict[str, dict[str, float]]:
    """`scores_of` for every step at once (one pass over the attributes), for step names without "/"."""
    by_step: dict[str, dict[str, float]] = {}
    for key, value in doc.attributes.items():
        step_name, slash, signal = key.partition("/")
        if slash:
            by_step.setdefault(step_name, {})[signal] = value
    return by_step


def _store(doc: Document, step_name: str, scores: dict[str, Any]) -> None:
    for signal, value in scores.items():
        doc.attributes[f"{step_name}/{signal}"] = value


def _headline_score(step: Any, scores: dict[str, float], reason: str) -> float | None:
    """The one number that explains a drop: the filter's own choice, else the signal named like the reason."""
    if hasattr(step, "reason_score"):
        return step.reason_score(scores, reason)
    for signal, value in scores.items():
        if signal in reason or reason in signal:
            return value
    return next(iter(scores.values())) if len(scores) == 1 else None
