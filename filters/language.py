"""Language identification with fastText lid.176 (Joulin et al. 2016), as in CCNet, FineWeb and Dolma.

Scores are the probabilities of the languages of interest plus the top label (`top_<code>`); a document
is kept when any language of interest scores above `min_score` (datatrove's LanguageFilter rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import ClassVar

import numpy as np

from curation import storage
from filters.base import TextView
from filters.fasttext_hs import HierarchicalSoftmaxPredictor, UnsupportedModel

# Shipped beside the code (models/README.md records its origin and licence).
DEFAULT_LID_MODEL = Path(__file__).resolve().parent / "resources" / "lid.176.ftz"
_LABEL_PREFIX = "__label__"
TOP_PREFIX = "top_"
PARAGRAPH_PREFIX = "paragraph_fraction_"


@dataclass(frozen=True)
class LanguageConfig:
    # ISO 639 codes as lid.176 writes them (en, de, zh...); empty keeps any language that is certain enough.
    languages: list[str] = field(default_factory=lambda: ["en"])
    min_score: float | None = 0.65
    model_path: str | None = None
    # Also score each line: the share of characters in lines whose top label is each language of interest.
    score_paragraphs: bool = False


def load_fasttext(path: str | Path):
    """Load a fastText model (a local file, or an S3 object through the worker's scratch cache) without its
    stderr warning about the deprecated `load_model` wrapper."""
    from fasttext.FastText import _FastText

    return _FastText(model_path=storage.local_file(str(path)))


def predict_batch(model, texts: Sequence[str], k: int) -> list[dict[str, float]]:
    """Top-k label probabilities per text, keyed without the `__label__` prefix.

    Uses the list form of `predict` (the single-string form fails on numpy 2); fastText reads one line
    per text, so newlines become spaces.
    """
    labels, probs = model.predict([t.replace("\n", " ") for t in texts], k=k)
    return [
        {label.removeprefix(_LABEL_PREFIX): float(p) for label, p in zip(doc_labels, doc_probs)}
        for doc_labels, doc_probs in zip(labels, probs)
    ]


class LanguageFilter:
    name: ClassVar[str] = "language_v1"
    Config = LanguageConfig

    def __init__(self, config: LanguageConfig):
        self.config = config
        self._model = None
        self._predictor: HierarchicalSoftmaxPredictor | None = None

    def setup(self) -> None:
        if self._model is None:
            path = storage.local_file(str(self.config.model_path or DEFAULT_LID_MODEL))
            self._model = load_fasttext(path)
            try:  # the same probabilities, several times faster on repeated words (lid.176 qualifies)
                self._predictor = HierarchicalSoftmaxPredictor(path)
            except UnsupportedModel:
                self._predictor = None

    def score(self, view: TextView) -> dict[str, float]:
        return self.score_batch([view])[0]

    def score_batch(self, views: Sequence[TextView]) -> list[dict[str, float]]:
        """One fastText call for the whole batch (the cheap path for Beam bundles)."""
        self.setup()
        labels, probabilities = self._label_probabilities(views)
        scores = _document_scores(labels, probabilities, self.config.languages)
        if self.config.score_paragraphs:
            for view, doc_scores in zip(views, scores):
                doc_scores.update(self._paragraph_scores(view))
        return scores

    def _label_probabilities(self, views: Sequence[TextView]) -> tuple[list[str], np.ndarray]:
        """Labels, and per text the probability fastText's `predict(k=-1)` gives each (0 when not given)."""
        texts = [v.text for v in views]
        if self._predictor is not None:
            # The whitespace split and its lookup are the word split's too (`TextView.chunk_ids`): made once
            # for both, and only for a text fastText splits the same way (or a later filter asks).
            chunk_ids = [partial(getattr, v, "chunk_ids") for v in views]
            return self._predictor.labels, self._predictor.probabilities(texts, chunk_ids)
        labels = [label.removeprefix(_LABEL_PREFIX) for label in self._model.labels]
        column = {label: i for i, label in enumerate(labels)}
        probabilities = np.zeros((len(texts), len(labels)), np.float32)
        for row, predicted in zip(probabilities, predict_batch(self._model, texts, k=-1)):
            for label, probability in predicted.items():
                row[column[label]] = probability
        return labels, probabilities

    def _paragraph_scores(self, view: TextView) -> dict[str, float]:
        lines = view.nonblank_lines
        chars_by_language = dict.fromkeys(self.config.languages, 0)
        if lines:
            for line, probs in zip(lines, predict_batch(self._model, lines, 1)):
                top = next(iter(probs), "")
                if top in chars_by_language:
                    chars_by_language[top] += len(line)
        total = sum(map(len, lines)) or 1
        return {PARAGRAPH_PREFIX + lang: chars / total for lang, chars in chars_by_language.items()}

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        if self.config.min_score is None:
            return None
        if self.config.languages:
            if all(scores[lang] <= self.config.min_score for lang in self.config.languages):
                return "wrong_language"
            return None
        return "uncertain_language" if top_language(scores)[1] <= self.config.min_score else None

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        if reason == "wrong_language":
            return max(scores[lang] for lang in self.config.languages)
        return top_language(scores)[1]


def _document_scores(
    labels: list[str], probabilities: np.ndarray, languages: Sequence[str]
) -> list[dict[str, float]]:
    """Each language of interest's probability and the top label's (`top_unknown` 0 when fastText gives
    no label). Of labels tied at the top, the first in the model's label order wins."""
    column = {label: i for i, label in enumerate(labels)}
    top = probabilities.argmax(axis=1).tolist() if len(labels) else [0] * len(probabilities)
    rows = probabilities.tolist()
    scores = []
    for row, top_column in zip(rows, top):
        doc_scores = {lang: row[column[lang]] if lang in column else 0.0 for lang in languages}
        top_prob = row[top_column] if row else 0.0
        doc_scores[TOP_PREFIX + (labels[top_column] if top_prob > 0 else "unknown")] = top_prob
        scores.append(doc_scores)
    return scores


def top_language(scores: dict[str, float]) -> tuple[str, float]:
    """The top label and its probability from a `language_v1` score dict."""
    return next((key.removeprefix(TOP_PREFIX), v) for key, v in scores.items() if key.startswith(TOP_PREFIX))
