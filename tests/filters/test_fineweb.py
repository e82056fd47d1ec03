from __future__ import annotations

import pytest
from helpers_quality import GOOD_PARAGRAPH

from filters.base import TextView
from filters.fineweb import FineWebQualityConfig, FineWebQualityFilter

FILTER = FineWebQualityFilter(FineWebQualityConfig())
MENU = "\n".join(["Home", "Products", "About us", "Contact", "Careers", "Blog", "Press", "Login"])

CASES = [
    (GOOD_PARAGRAPH, None),
    ("", "fineweb_few_terminal_punctuation"),
    (MENU + "\n" + GOOD_PARAGRAPH, "fineweb_few_terminal_punctuation"),
    (
        "\n".join(["Short line one.", "Another one.", "And more.", "Yes."]) + "\n" + GOOD_PARAGRAPH,
        "fineweb_short_lines",
    ),
    (
        "\n".join(
            [
                GOOD_PARAGRAPH,
                "All rights reserved to the authors of this page.",
                "All rights reserved to the authors of this page.",
            ]
        ),
        "fineweb_dup_line_chars",
    ),
    ("\n".join(f"Catalogueentry{i:02d}supercalifragilistic!" for i in range(20)), "fineweb_list_like"),
]


@pytest.mark.parametrize(("text", "reason"), CASES)
def test_fineweb_rejects_with_reason(text, reason):
    assert FILTER.reject_reason(FILTER.score(TextView(text))) == reason


def test_option_spares_text_without_any_terminal_punctuation():
    spare = FineWebQualityFilter(
        FineWebQualityConfig(keep_without_terminal_punctuation=True, max_short_lines_fraction=None)
    )
    scores = spare.score(TextView(MENU))
    assert scores["terminal_punctuation_lines_fraction"] == 0
    assert spare.reject_reason(scores) == "fineweb_list_like"
