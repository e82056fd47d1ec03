"""The shared word split's shortcuts give exactly the tokens and counts of the full rules, on real text."""

from __future__ import annotations

import pytest
from helpers_quality import web_corpus_texts

from filters.base import TextView
from filters.words import _CHUNK_TOKEN, _SIMPLE_CHUNK, WORDS, _chunk_tokens, split_words

# Shapes at the shortcut's edges: abbreviations and single letters keep their full stop, digits and
# other words, numbers, hyphenated words and contractions do not; quotes, brackets and stops around them.
EDGE_CHUNKS = [
    "Mr.", "Mrs.", "Mrx.", "co.", "Co.", "Sept.", "p.", "A.", "5.", "(Dr.", '"I.', "(a.", "end.", "end.)",
    "'s", "'em", "it's", "don't", "well-known", "(see", "said,\"", "“Hi”", "‘a’", "[1]", "5%", "(5%)",
    "_a", "a_", "e.g.", "U.S.", "end..", "end...", "x²", "café,", "3.5.", "1,000,", "(3.5%)", "3-d", "a-3",
    "it's.", "don't,\"", "cann't", "y'all", "well-known.", "x-y.", "ex-Gov.", "a--b", "end\".", "end).",
    "Mr.)", "end.\".", "Mr...", "end.,.",
]  # fmt: skip


@pytest.fixture(scope="module")
def web_chunks() -> list[str]:
    return list(dict.fromkeys(c for text in web_corpus_texts() for c in text.split() if not c.isalnum()))


def test_simple_chunks_tokenize_as_the_chunk_rules(web_chunks):
    simple = [c for c in web_chunks + EDGE_CHUNKS if _SIMPLE_CHUNK.fullmatch(c)]
    assert len(simple) > 1000  # the shortcut is taken on real text
    assert [_chunk_tokens(c) for c in simple] == [tuple(_CHUNK_TOKEN.findall(c)) for c in simple]
    for chunk in EDGE_CHUNKS:
        assert _chunk_tokens(chunk) == tuple(_CHUNK_TOKEN.findall(chunk)), chunk


def test_word_count_without_the_words_equals_their_number():
    texts = web_corpus_texts()[::3]
    assert [TextView(text).word_count for text in texts] == [len(TextView(text).words) for text in texts]


def test_a_view_looks_its_words_up_again_after_the_table_starts_afresh(monkeypatch):
    text = web_corpus_texts()[0]
    view = TextView(text)
    words = [WORDS.words[i] for i in view.word_ids]
    monkeypatch.setattr(WORDS, "max_chunks", 0)
    generation = WORDS.generation
    WORDS.start_afresh_if_full()
    assert WORDS.generation == generation + 1
    TextView("Other words take the low ids now.").word_ids
    assert [WORDS.words[i] for i in view.word_ids] == words == split_words(text)
    assert view.word_count == len(words)
