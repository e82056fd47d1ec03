"""Normalization of words for contamination n-grams, and offsets that point back into the original text."""

import pytest

from filters.decontaminate.words import joined_chunks, normalized_words, normalized_words_with_offsets


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
