from __future__ import annotations

import dataclasses

import pytest
from helpers_quality import GOOD_PARAGRAPH

from filters.base import TextView
from filters.gopher_quality import GopherQualityConfig, GopherQualityFilter

FILTER = GopherQualityFilter(GopherQualityConfig())

CASES = [
    (GOOD_PARAGRAPH, None),
    ("The cat sat on the mat and looked at the door.", "gopher_too_few_words"),
    (" ".join(["a", "of", "to", "be", "it", "is", "the", "an"] * 10), "gopher_short_words"),
    (
        " ".join(["the", "internationalization", "of", "telecommunications", "infrastructure"] * 15),
        "gopher_long_words",
    ),
    (GOOD_PARAGRAPH + " " + "#news #river #farm " * 10, "gopher_too_many_hashes"),
    (GOOD_PARAGRAPH + " and then..." * 20, "gopher_too_many_ellipses"),
    (
        "\n".join(f"• item {i} of the list with the usual words" for i in range(20)),
        "gopher_too_many_bullet_lines",
    ),
    (GOOD_PARAGRAPH + "\n" + "\n".join(["read more of the story..."] * 3), "gopher_too_many_ellipsis_lines"),
    (GOOD_PARAGRAPH + " " + " ".join(str(n) for n in range(200)), "gopher_too_few_alpha_words"),
    (
        " ".join(["river", "fields", "water", "farmers", "animals", "church", "ground"] * 10),
        "gopher_too_few_stop_words",
    ),
]


@pytest.mark.parametrize(("text", "reason"), CASES)
def test_gopher_quality_rejects_with_reason(text, reason):
    assert FILTER.reject_reason(FILTER.score(TextView(text))) == reason


def test_threshold_change_redecides_from_stored_scores():
    scores = FILTER.score(TextView("The cat sat on the mat and looked at the door."))
    lenient = GopherQualityFilter(dataclasses.replace(FILTER.config, min_words=5))
    assert FILTER.reject_reason(scores) == "gopher_too_few_words"
    assert lenient.reject_reason(scores) is None


def test_disabled_rule_never_rejects():
    no_stop_words = " ".join(["river", "fields", "water", "farmers", "animals", "church", "ground"] * 10)
    relaxed = GopherQualityFilter(GopherQualityConfig(min_distinct_stop_words=None))
    assert relaxed.reject_reason(relaxed.score(TextView(no_stop_words))) is None


def test_symbols_are_not_words_but_count_in_ratios():
    scores = FILTER.score(TextView("one two -- three ... four # five"))
    assert scores["words"] == 5
    assert scores["hash_to_word_ratio"] == pytest.approx(1 / 8)
    assert FILTER.reason_score(scores, "gopher_too_few_words") == 5
