from __future__ import annotations

import pytest
from helpers_quality import GOOD_PARAGRAPH

from filters.base import TextView
from filters.c4 import C4LineRemoval, C4LineRulesConfig, C4QualityConfig, C4QualityFilter, count_sentences

FILTER = C4QualityFilter(C4QualityConfig())
REMOVER = C4LineRemoval(C4LineRulesConfig())

CASES = [
    (GOOD_PARAGRAPH, None),
    ("One short sentence here. And another one.", "c4_too_few_sentences"),
    (GOOD_PARAGRAPH + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.", "c4_lorem_ipsum"),
    (GOOD_PARAGRAPH + "\nThe function returns {x: 1} for every input.", "c4_curly_bracket"),
    # A line dropped earlier (no terminal punctuation) never reaches the document rules.
    (GOOD_PARAGRAPH + "\nfunction f() { return 1 }", None),
    # The JavaScript rule removes the line before the curly-bracket check sees it.
    (GOOD_PARAGRAPH + "\nPlease enable JavaScript to view {comments}.", None),
]


@pytest.mark.parametrize(("text", "reason"), CASES)
def test_c4_rejects_with_reason(text, reason):
    assert FILTER.reject_reason(FILTER.score(TextView(text))) == reason


@pytest.mark.parametrize(
    ("line", "sentences"),
    [
        ("The river rose. The fields flooded! Did the wall hold?", 3),
        ("Mr. Smith met Dr. Jones in St. Louis.", 1),
        ("The U.S. Army arrived at 5 p.m. and left.", 1),
        ("It cost 3.5 million, e.g. the whole budget.", 1),
        ("He paused... then spoke again.", 1),
        ('She said "stop." Then she left.', 2),
    ],
)
def test_counts_sentences_like_spacy_sentencizer(line, sentences):
    assert count_sentences(line) == sentences


def test_line_removal_keeps_only_lines_c4_keeps():
    text = "\n".join(
        [
            "Home | About | Contact",
            "The river rose slowly through the night [1].",
            "This site uses cookies to improve your experience.",
            "Please enable JavaScript in your browser.",
            "Too short.",
            "By noon the rain had stopped, and the water fell.",
        ]
    )
    new_text, measurements = REMOVER.modify(TextView(text))
    assert (
        new_text
        == "The river rose slowly through the night .\nBy noon the rain had stopped, and the water fell."
    )
    assert measurements == {"lines_removed": 4.0, "lines": 6.0}


def test_lorem_ipsum_rule_can_be_switched_off_without_rescoring():
    scores = FILTER.score(
        TextView(GOOD_PARAGRAPH + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit.")
    )
    lenient = C4QualityFilter(C4QualityConfig(drop_lorem_ipsum=False))
    assert lenient.reject_reason(scores) is None
    assert FILTER.reason_score(scores, "c4_lorem_ipsum") == 1.0
