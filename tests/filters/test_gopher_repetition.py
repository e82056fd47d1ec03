from __future__ import annotations

import numpy as np
import pytest
from helpers_quality import GOOD_PARAGRAPH, web_corpus_texts

from filters.base import TextView
from filters.gopher_repetition import (
    BatchNgrams,
    GopherRepetitionConfig,
    GopherRepetitionFilter,
    duplicated_ngram_chars,
    word_ends,
)

FILTER = GopherRepetitionFilter(GopherRepetitionConfig())
OTHER_PARAGRAPH = (
    "Later that week the council met to discuss what should be done before the next storm arrives, "
    "and several members asked for a survey of the old walls along the northern bank."
)

CASES = [
    (GOOD_PARAGRAPH + "\n\n" + OTHER_PARAGRAPH, None),
    ("", "gopher_too_few_chars"),
    ("\n\n".join([GOOD_PARAGRAPH, OTHER_PARAGRAPH, OTHER_PARAGRAPH]), "gopher_dup_paragraphs"),
    (
        "\n\n".join([OTHER_PARAGRAPH, "a", "b", "c", "d", "e", "f", OTHER_PARAGRAPH, GOOD_PARAGRAPH]),
        "gopher_dup_paragraph_chars",
    ),
    ("\n".join([GOOD_PARAGRAPH, "Share", "Share", "Share", "Like", "Reply"]), "gopher_dup_lines"),
    (GOOD_PARAGRAPH + " " + "buy cheap shoes " * 40, "gopher_top_2gram"),
    (GOOD_PARAGRAPH + " " + "the best cheap shoes online today " * 12, "gopher_top_3gram"),
    (GOOD_PARAGRAPH + " " + GOOD_PARAGRAPH[:120], "gopher_dup_5gram"),
]


@pytest.mark.parametrize(("text", "reason"), CASES)
def test_gopher_repetition_rejects_with_reason(text, reason):
    assert FILTER.reject_reason(FILTER.score(TextView(text))) == reason


def test_config_refuses_ngram_sizes_that_are_not_scored():
    with pytest.raises(ValueError, match="not scored"):
        GopherRepetitionConfig(max_dup_ngram_char_fraction={11: 0.1})


def _reference_duplicated_chars(words: list[str], n: int) -> int:
    """Gopher's definition written plainly: scan n-grams, jump past each one seen before."""
    seen, repeated, idx = set(), 0, 0
    while idx < len(words) - n + 1:
        gram = tuple(words[idx : idx + n])
        if gram in seen:
            repeated += sum(map(len, gram))
            idx += n
        else:
            seen.add(gram)
            idx += 1
    return repeated


def _reference_top_chars(words: list[str], n: int) -> int:
    counts: dict[tuple[str, ...], int] = {}
    for i in range(len(words) - n + 1):
        gram = tuple(words[i : i + n])
        counts[gram] = counts.get(gram, 0) + 1
    if not counts:
        return 0
    gram, count = max(counts.items(), key=lambda item: item[1])
    return (sum(map(len, gram)) + n - 1) * count


def test_vectorised_ngram_counts_equal_the_plain_definition_on_real_text():
    # Labelled as one batch, so an n-gram repeated across documents must not count as a repeat.
    texts = web_corpus_texts()[::7]
    views = [TextView(text) for text in texts]
    views += [views[-1], TextView(""), TextView(" ".join(views[-1].words[:3]))]  # a copy, empty, short
    documents = [view.words for view in views]
    ngrams = BatchNgrams([view.word_labels for view in views])
    batch_ends = word_ends(views)
    for n in range(2, 11):
        ngrams.grow(n)
        assert ngrams.top_ngram_chars(n, batch_ends) == [
            _reference_top_chars(words, n) for words in documents
        ]
        for doc, words in enumerate(documents):
            labels = ngrams.of_document(doc, n)
            ends = np.concatenate(([0], np.cumsum([len(w) for w in words]))).astype(np.int64)
            assert duplicated_ngram_chars(labels, n, ends) == _reference_duplicated_chars(words, n)


def test_batch_scores_equal_one_document_at_a_time():
    views = [TextView(text) for text in web_corpus_texts()[:300]]
    assert FILTER.score_batch(views) == [FILTER.score(TextView(view.text)) for view in views]
