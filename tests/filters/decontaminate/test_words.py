"""Normalization of words for contamination n-grams, and offsets that point back into the original text."""

import pytest
from helpers_decontaminate import require_shared, web_texts

from filters.decontaminate.keys import keys_of_words, word_keys
from filters.decontaminate.words import (
    joined_chunks,
    normalized_words,
    normalized_words_with_offsets,
    word_spans,
)

# Texts where NFKC changes words: compositions (e + U+0301, Hangul jamo, a Tamil vowel pair), a final sigma,
# compatibility forms, a no-break space, a lone surrogate, characters past the Basic Multilingual Plane.
_UNICODE_EDGES = [
    "Hello, World! It's 2024_x caf\u00e9 \ufb01ne \u216b \U0001d400\U0001d401c e\u0301 \ud800x \U0001f600ok",
    "\u1100\u1161\u11a8 \uac00\u11a8 \u0b95\u0bc6\u0bbe \u0915\u093c",
    "\u0391\u03a3 \u039f\u0394\u039f\u03a3. x\u00a0y \uff26\uff35\uff2c\uff2c\uff0d\uff37 \u2460\u2461",
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What year was the Eiffel Tower constructed?", "what year was the eiffel tower constructed"),
        ("The **Eiffel Tower**, (France)!!!", "the eiffel tower france"),
        ("  spaced\t\tout \n words ", "spaced out words"),
        ("ＦＵＬＬ－ＷＩＤＴＨ text", "full width text"),  # NFKC folds full-width forms
        ("Janet\u2019s ducks", "janet s ducks"),
        ("ﬁnal café", "final café"),
        ("snake_case_name(x)", "snake case name x"),
    ],
)
def test_normalizes_case_punctuation_whitespace_and_unicode(text, expected):
    assert " ".join(normalized_words(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Plain ASCII, with punctuation. And two sentences!",
        "Curly \u201cquotes\u201d and an em\u2014dash in Janet\u2019s text",
        "Compatibility forms: \ufb01ne ＡＢＣ \u2460 and x\u00a0y",
    ],
)
def test_offsets_give_the_same_words_and_cover_them_in_the_text(text):
    words, starts, ends = normalized_words_with_offsets(text)
    assert words == normalized_words(text)
    for word, start, end in zip(words, starts, ends):
        assert 0 <= start < end <= len(text)
        assert word in " ".join(normalized_words(text[start:end]))


def test_joined_chunks_are_the_words_a_text_has_with_its_punctuation_deleted():
    assert joined_chunks("def f(a,b,n): return a") == ["def", "fabn", "return", "a"]
    assert joined_chunks("Earth\u2019s well-known -> crust") == ["earths", "wellknown", "crust"]


def test_word_spans_find_the_words_of_normalized_words_in_every_real_web_text():
    """The array screen of detection (detect.py) relies on this: any difference would let it miss an item."""
    require_shared()
    for text in web_texts() + _UNICODE_EDGES:
        code_points, starts, ends = word_spans(text)
        words = normalized_words(text)
        assert ["".join(map(chr, code_points[s:e].tolist())) for s, e in zip(starts, ends)] == words
        assert (word_keys(code_points, starts, ends) == keys_of_words(words)).all()
