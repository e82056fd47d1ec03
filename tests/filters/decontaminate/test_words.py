"""Normalization of words for contamination n-grams, and offsets that point back into the original text."""

import re
import unicodedata

import pytest
from helpers_decontaminate import require_shared, web_texts

from filters.decontaminate.keys import keys_of_words, word_keys
from filters.decontaminate.words import (
    _nfkc,
    _replacements,
    joined_chunks,
    normalized_words,
    normalized_words_with_offsets,
    word_spans,
    word_spans_of_texts,
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


def test_word_spans_of_texts_laid_end_to_end_are_each_texts_words():
    require_shared()
    texts = web_texts()[::4] + _UNICODE_EDGES + ["", "!!!", "\u00a0", "\u0130stanbul \U00010400x \u2026\u03a3"]
    code_points, starts, ends, word_text = word_spans_of_texts(texts)
    words_of_text = [[] for _ in texts]
    for s, e, t in zip(starts.tolist(), ends.tolist(), word_text.tolist()):
        words_of_text[t].append("".join(map(chr, code_points[s:e].tolist())))
    assert words_of_text == [normalized_words(text) for text in texts]
    # Empty texts take their place too.
    assert sorted(word_spans_of_texts(["", "\u00e9t\u00e9", "", "x"])[3].tolist()) == [1, 3]


@pytest.mark.parametrize(
    "context", ["{}", "a{}b", "e\u0301{}\u0301", "\u1100{}\u1161", "\u03a3{}\u03a3 x", "{}{}"]
)
def test_compatibility_characters_replaced_by_their_decomposition_give_nfkc(context):
    """Detection skips NFKC for a text whose only changeable characters have such a replacement."""
    for c in _replacements():
        text = context.format(c, c)
        assert _nfkc(text) == unicodedata.normalize("NFKC", text), hex(ord(c))


def test_offsets_are_those_of_each_chunk_on_its_own():
    """Offsets are defined chunk by chunk; stretches without a changeable character are split whole."""
    require_shared()
    for text in web_texts()[::3] + _UNICODE_EDGES + ["\u0130stanbul \u03a3\u03a3 x\u00a0\u03a3y"]:
        by_chunk = ([], [], [])
        for chunk in re.finditer(r"\S+", text):
            words, starts, ends = normalized_words_with_offsets(chunk.group())
            by_chunk[0].extend(words)
            by_chunk[1].extend(s + chunk.start() for s in starts)
            by_chunk[2].extend(e + chunk.start() for e in ends)
        assert normalized_words_with_offsets(text) == by_chunk
