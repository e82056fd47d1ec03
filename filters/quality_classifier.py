"""Model-based quality: a fastText classifier of high- vs low-quality text (DCLM, Li et al. 2024).

`train_quality_classifier` trains one from labelled JSONL with a deterministic held-out split and writes
the model with a JSON sidecar (training-data digests, parameters, held-out metrics). The filter scores
P(high quality); a source keeps documents above `min_score`, or its top `keep_top_fraction` by score,
which is decided over the whole source with `top_fraction_cutoff`.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import heapq
import json
import math
import multiprocessing
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import xxhash

from filters.base import TextView
from filters.language import load_fasttext, predict_batch

HIGH_QUALITY = "hq"
LOW_QUALITY = "lq"


@dataclass(frozen=True)
class QualityClassifierConfig:
    model: str
    # Exactly one of the two rules: a fixed score floor, or the source's top fraction by score.
    min_score: float | None = None
    keep_top_fraction: float | None = None

    def __post_init__(self) -> None:
        if (self.min_score is None) == (self.keep_top_fraction is None):
            raise ValueError("set exactly one of min_score and keep_top_fraction")
        if self.keep_top_fraction is not None and not 0 < self.keep_top_fraction <= 1:
            raise ValueError(f"keep_top_fraction must be in (0, 1], got {self.keep_top_fraction}")


def classifier_text(text: str) -> str:
    """The text as the classifier sees it, in training and in scoring: one lowercased line."""
    return " ".join(text.lower().split())


class QualityClassifierFilter:
    name: ClassVar[str] = "quality_classifier_v1"
    Config = QualityClassifierConfig

    def __init__(self, config: QualityClassifierConfig):
        self.config = config
        self._model = None

    def setup(self) -> None:
        if self._model is None:
            self._model = load_fasttext(self.config.model)

    def score(self, view: TextView) -> dict[str, float]:
        return self.score_batch([view])[0]

    def score_batch(self, views: Sequence[TextView]) -> list[dict[str, float]]:
        self.setup()
        predictions = predict_batch(self._model, [classifier_text(v.text) for v in views], k=2)
        return [{"p_high_quality": p.get(HIGH_QUALITY, 0.0)} for p in predictions]

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        """The per-document rule only; `keep_top_fraction` is decided over the source by the pipeline."""
        if self.config.min_score is not None and scores["p_high_quality"] < self.config.min_score:
            return "low_quality_score"
        return None

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        return scores["p_high_quality"]


def top_fraction_cutoff(scored: Iterable[tuple[str, float]], fraction: float) -> tuple[float, str] | None:
    """The last kept (score, doc_id) when keeping the top `fraction` of documents by score.

    Keeps ceil(fraction * n) documents, ranked by score descending then doc id ascending, so ties are
    broken the same way whatever the input order. None when there is nothing to keep.
    """
    items = [(-score, doc_id) for doc_id, score in scored]
    keep = math.ceil(fraction * len(items))
    if keep == 0:
        return None
    neg_score, doc_id = heapq.nsmallest(keep, items)[-1]
    return -neg_score, doc_id


def kept_by_cutoff(doc_id: str, score: float, cutoff: tuple[float, str] | None) -> bool:
    """Whether a document ranks at or above the cutoff from `top_fraction_cutoff`."""
    if cutoff is None:
        return False
    cutoff_score, cutoff_id = cutoff
    return (-score, doc_id) <= (-cutoff_score, cutoff_id)


@dataclass(frozen=True)
class TrainingParams:
    """fastText supervised parameters; one thread keeps training deterministic for a given seed."""

    epoch: int = 20
    lr: float = 0.5
    word_ngrams: int = 2
    dim: int = 32
    min_count: int = 1
    # Hash buckets for word bigrams; with dim they set the model size (200k x 32 floats: about 26 MB).
    # fastText 0.9 (fasttext-numpy2-wheel) hits NaN on some seeds with much smaller tables.
    bucket: int = 200_000
    threads: int = 1


@dataclass(frozen=True)
class QuantizeParams:
    """fastText `quantize` (Joulin et al. 2016, "FastText.zip"), as lid.176.ftz was made: keep the `cutoff`
    most useful words and n-grams, product-quantize their vectors in `dsub`-wide blocks, then fine-tune.

    The default cutoff shrinks the DCLM-labels model from 26 MB to under 1 MB with the same held-out
    accuracy; fastText 0.9 (fasttext-numpy2-wheel) hits NaN on some runs with cutoffs of 50k and more.
    """

    cutoff: int = 20_000
    dsub: int = 2
    retrain: bool = True
    qnorm: bool = True


@dataclass
class TrainingReport:
    model_path: str
    train_examples: int
    held_out_examples: int
    metrics: dict[str, float]
    params: dict[str, Any]
    seed: int
    held_out_fraction: float
    inputs: dict[str, str] = field(default_factory=dict)
    # Quantization parameters and the held-out metrics before quantizing; None for a full model.
    quantize: dict[str, Any] | None = None


def read_labelled(path: Path, label: int | None, label_field: str) -> list[tuple[str, int]]:
    """(text, label) pairs from JSONL; `label` fixes the label for all rows, else it is read per row."""
    pairs = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if "text" not in row or (label is None and label_field not in row):
                raise ValueError(
                    f"{path}:{number}: needs 'text'{'' if label is not None else f' and {label_field!r}'}"
                )
            pairs.append((row["text"], int(row[label_field]) if label is None else label))
    return pairs


def _is_held_out(text: str, seed: int, fraction: float) -> bool:
    digest = xxhash.xxh64_intdigest(text.encode("utf-8", "surrogatepass"), seed=seed)
    return digest / 2**64 < fraction


def split_held_out(
    examples: dict[str, int], seed: int, fraction: float
) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(train, held out) pairs; a text's side is a digest of (seed, text), whatever the input order."""
    train, held_out = [], []
    for text, label in examples.items():
        (held_out if _is_held_out(text, seed, fraction) else train).append((text, label))
    return train, held_out


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_fasttext_file(pairs: Sequence[tuple[str, int]], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for text, label in pairs:
            out.write(f"__label__{HIGH_QUALITY if label else LOW_QUALITY} {classifier_text(text)}\n")


def held_out_metrics(model, pairs: Sequence[tuple[str, int]], threshold: float = 0.5) -> dict[str, float]:
    """Precision, recall and F1 of the high-quality class at `threshold`, plus accuracy and the share a
    majority-class guess would get right."""
    if not pairs:
        return {}
    predictions = predict_batch(model, [classifier_text(t) for t, _ in pairs], k=2)
    predicted = [p.get(HIGH_QUALITY, 0.0) >= threshold for p in predictions]
    actual = [bool(label) for _, label in pairs]
    tp = sum(p and a for p, a in zip(predicted, actual))
    fp = sum(p and not a for p, a in zip(predicted, actual))
    fn = sum(a and not p for p, a in zip(predicted, actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    positives = sum(actual)
    return {
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "accuracy": sum(p == a for p, a in zip(predicted, actual)) / len(pairs),
        "majority_baseline_accuracy": max(positives, len(pairs) - positives) / len(pairs),
    }


def train_quality_classifier(
    output_path: str | Path,
    *,
    positive_paths: Sequence[str | Path] = (),
    negative_paths: Sequence[str | Path] = (),
    labelled_paths: Sequence[str | Path] = (),
    label_field: str = "label",
    params: TrainingParams = TrainingParams(),
    seed: int = 0,
    held_out_fraction: float = 0.2,
    quantize: QuantizeParams | None = None,
) -> TrainingReport:
    """Train a fastText quality classifier and write `output_path` plus `output_path + ".json"`.

    Positive files are high quality (label 1), negative files low quality (0); labelled files carry a
    0/1 `label_field`. Exact duplicate texts are kept once (the first label seen), so no text sits on
    both sides of the split. The held-out split is a digest of (seed, text): stable across runs and
    input order. With `quantize`, the written model is quantized (name it `.ftz`, as fastText does) and
    its held-out metrics are the quantized model's.
    """
    sources = [(Path(p), 1) for p in positive_paths] + [(Path(p), 0) for p in negative_paths]
    sources += [(Path(p), None) for p in labelled_paths]
    if not sources:
        raise ValueError("no training data: give positive and negative files or labelled files")
    examples: dict[str, int] = {}
    for path, label in sources:
        for text, row_label in read_labelled(path, label, label_field):
            examples.setdefault(text, row_label)
    train, held_out = split_held_out(examples, seed, held_out_fraction)
    if len({y for _, y in train}) < 2:
        raise ValueError("training data needs both high- and low-quality examples")

    output = Path(output_path)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        train_file = Path(tmp) / "train.txt"
        _write_fasttext_file(train, train_file)
        # fastText 0.9 (fasttext-numpy2-wheel) carries state between trainings in one process: a second
        # run with the same seed can give another model or NaN. A fresh process per training keeps a
        # seed's model the same whatever ran before.
        spawn = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as fresh_process:
            metrics_before_quantize = fresh_process.submit(
                _train_and_save, train_file, output, params, seed, quantize, held_out
            ).result()
    quantize_record = None
    if quantize is not None:
        quantize_record = {**asdict(quantize), "held_out_metrics_before": metrics_before_quantize}
    model = load_fasttext(output)
    report = TrainingReport(
        model_path=str(output),
        train_examples=len(train),
        held_out_examples=len(held_out),
        metrics=held_out_metrics(model, held_out),
        params=asdict(params),
        seed=seed,
        held_out_fraction=held_out_fraction,
        inputs={str(path): _sha256(path) for path, _ in sources},
        quantize=quantize_record,
    )
    sidecar = {
        **asdict(report),
        "model_sha256": _sha256(output),
        "labels": {"1": HIGH_QUALITY, "0": LOW_QUALITY},
    }
    Path(f"{output}.json").write_text(json.dumps(sidecar, indent=2, sort_keys=True) + "\n")
    return report


def _train_and_save(
    train_file: Path,
    output: Path,
    params: TrainingParams,
    seed: int,
    quantize: QuantizeParams | None,
    held_out: Sequence[tuple[str, int]],
) -> dict[str, float]:
    """Train (and quantize) a model, write it to `output`; the held-out metrics of the full model."""
    import fasttext

    try:
        model = fasttext.train_supervised(
            input=str(train_file),
            epoch=params.epoch,
            lr=params.lr,
            wordNgrams=params.word_ngrams,
            dim=params.dim,
            minCount=params.min_count,
            bucket=params.bucket,
            thread=params.threads,
            seed=seed,
            verbose=0,
        )
    except RuntimeError as exc:
        raise ValueError(f"fastText training failed ({exc}); try another seed or a larger bucket") from exc
    metrics = held_out_metrics(model, held_out)
    if quantize is not None:
        try:
            model.quantize(input=str(train_file), thread=params.threads, verbose=0, **asdict(quantize))
        except RuntimeError as exc:
            raise ValueError(
                f"fastText quantize failed ({exc}); try another seed or a smaller cutoff"
            ) from exc
    model.save_model(str(output))
    return metrics
