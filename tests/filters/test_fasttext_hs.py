from __future__ import annotations

import numpy as np
from helpers_quality import web_corpus_texts

from filters.base import TextView
from filters.fasttext_hs import HierarchicalSoftmaxPredictor, expf
from filters.language import DEFAULT_LID_MODEL, LanguageConfig, LanguageFilter, load_fasttext, predict_batch
from filters.words import WORDS

# Lines that exercise fastText's reading rules: empty, labels, an end-of-line token inside the text,
# separators Python splits at but fastText does not (and the reverse), multi-byte characters.
EDGE_TEXTS = [
    "",
    "   ",
    "__label__en __label__xx hello there",
    "first words </s> ignored after the end token",
    "unit\x1fseparator and\xa0no-break\u2028line",
    "tab\tseparated\x00nul\x0bvertical",
    "日本語のテキストです。 Ελληνικά κείμενα και русский текст",
]


def _as_rows(predictions: list[dict[str, float]], labels: list[str]) -> np.ndarray:
    column = {label: i for i, label in enumerate(labels)}
    rows = np.zeros((len(predictions), len(labels)), np.float32)
    for row, predicted in zip(rows, predictions):
        for label, probability in predicted.items():
            row[column[label]] = probability
    return rows


def test_probabilities_are_bit_identical_to_fasttext_predict_on_real_web_text():
    texts = web_corpus_texts()[::4] + EDGE_TEXTS
    predictor = HierarchicalSoftmaxPredictor(DEFAULT_LID_MODEL)
    ours = np.concatenate([predictor.probabilities(texts[i : i + 100]) for i in range(0, len(texts), 100)])
    theirs = _as_rows(predict_batch(load_fasttext(DEFAULT_LID_MODEL), texts, k=-1), predictor.labels)
    assert ours.shape == (len(texts), 176)
    mismatched = [texts[i][:60] for i in np.flatnonzero((ours != theirs).any(axis=1))]
    assert not mismatched


def test_repeated_batches_give_the_same_probabilities():
    texts = web_corpus_texts()[:50]
    predictor = HierarchicalSoftmaxPredictor(DEFAULT_LID_MODEL)
    first = predictor.probabilities(texts)
    assert np.array_equal(predictor.probabilities(texts[::-1])[::-1], first)


def test_expf_matches_the_c_library_expf():
    import ctypes
    import ctypes.util

    libm = ctypes.CDLL(ctypes.util.find_library("m"))
    libm.expf.restype, libm.expf.argtypes = ctypes.c_float, [ctypes.c_float]
    x = np.random.default_rng(0).uniform(-20, 20, 20_000).astype(np.float32)
    assert np.array_equal(expf(x), np.array([libm.expf(float(v)) for v in x], np.float32))


def test_language_filter_scores_the_same_through_fasttext_itself():
    views = [TextView(t) for t in web_corpus_texts()[:200] + EDGE_TEXTS]
    fast = LanguageFilter(LanguageConfig(languages=["en", "de"]))
    fast.setup()
    plain = LanguageFilter(LanguageConfig(languages=["en", "de"]))
    plain.setup()
    plain._predictor = None  # the fastText `predict` path, used for models the predictor does not handle
    assert fast.score_batch(views) == plain.score_batch(views)
    # A text fastText splits otherwise (a no-break space, a unit separator) was not split at whitespace for it.
    odd = next(v for v in views if "\xa0" in v.text and "\x1f" in v.text)
    assert "chunks" not in vars(odd)
    # The predictor read each view's shared whitespace split without changing it (the word split uses it too).
    assert [v.chunks for v in views] == [v.text.split() for v in views]


def test_forgetting_cached_words_changes_no_probability(monkeypatch):
    texts = web_corpus_texts()[:60]
    expected = HierarchicalSoftmaxPredictor(DEFAULT_LID_MODEL).probabilities(texts)
    monkeypatch.setattr(WORDS, "max_chunks", 500)
    predictor = HierarchicalSoftmaxPredictor(DEFAULT_LID_MODEL)
    batches = [predictor.probabilities(texts[i : i + 10]) for i in range(0, len(texts), 10)]
    assert len(WORDS.chunks_from(0)) < 3000
    assert np.array_equal(np.concatenate(batches), expected)
