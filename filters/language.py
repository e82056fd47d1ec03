"""Language identification with fastText lid.176 (Joulin et al. 2016), as in CCNet, FineWeb and Dolma.

Scores are the probabilities of the languages of interest plus the top label (`top_<code>`); a document
is kept when any language of interest scores above `min_score` (datatrove's LanguageFilter rule).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from collections.abc import Sequence

from filters.base import TextView

# Shipped beside the code (models/README.md records its origin and licence).
DEFAULT_LID_MODEL = Path(__file__).resolve().parents[1] / "models" / "lid.176.ftz"
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
    """Load a fastText model without its stderr warning about the deprecated `load_model` wrapper."""
    from fasttext.FastText import _FastText

    return _FastText(model_path=str(path))


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

    def setup(self) -> None:
        if self._model is None:
            self._model = load_fasttext(self.config.model_path or DEFAULT_LID_MODEL)

    def score(self, view: TextView) -> dict[str, float]:
        return self.score_batch([view])[0]

    def score_batch(self, views: Sequence[TextView]) -> list[dict[str, float]]:
        """One fastText call for the whole batch (the cheap path for Beam bundles)."""
        self.setup()
        # All labels when languages of interest are named, so each gets its probability even when not top.
        k = -1 if self.config.languages else 1
        predictions = predict_batch(self._model, [v.text for v in views], k)
        scores = [self._document_scores(p) for p in predictions]
        if self.config.score_paragraphs:
            for view, doc_scores in zip(views, scores):
                doc_scores.update(self._paragraph_scores(view))
        return scores

    def _document_scores(self, probs: dict[str, float]) -> dict[str, float]:
        top_label, top_prob = max(probs.items(), key=lambda item: item[1]) if probs else ("unknown", 0.0)
        scores = {lang: probs.get(lang, 0.0) for lang in self.config.languages}
        scores[TOP_PREFIX + top_label] = top_prob
        return scores

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


def top_language(scores: dict[str, float]) -> tuple[str, float]:
    """The top label and its probability from a `language_v1` score dict."""
    return next((key.removeprefix(TOP_PREFIX), v) for key, v in scores.items() if key.startswith(TOP_PREFIX))
