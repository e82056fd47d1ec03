from __future__ import annotations

import pytest
from helpers_lists import BADWORDS_DIR, CC_WEB, demo_record

from filters.base import TextView
from filters.c4_badwords import C4BadWordsConfig, C4BadWordsFilter

FILTER = C4BadWordsFilter(C4BadWordsConfig(words_dir=str(BADWORDS_DIR)))


def _reason(text: str, metadata: dict | None = None) -> str | None:
    return FILTER.reject_reason(FILTER.score(TextView(text, metadata or {})))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (0, None),
        (17, "c4_badwords"),  # Polish page: "xx" as a word
        (193, "c4_badwords"),  # "bdsm"
        (453, "c4_badwords"),
        (41, None),  # an insurance page
    ],
)
def test_real_documents(line, reason):
    assert _reason(demo_record(CC_WEB, line)["text"]) == reason


@pytest.mark.parametrize(
    ("text", "metadata", "reason"),
    [
        # Only whole words count: "assessment" and "Scunthorpe" hold list words.
        ("The assessment of Scunthorpe's class.", {}, None),
        ("What an ASS.", {}, "c4_badwords"),
        # The document's own language picks the list: German "arsch", not an English word.
        ("So ein Arsch!", {"language": "de"}, "c4_badwords"),
        ("So ein Arsch!", {}, None),
        # Chinese is matched without word boundaries; the allow-listed subword 性 is not a bad word.
        ("这是三级片的网站", {"language": "zh"}, "c4_badwords"),
        ("性别平等", {"language": "zh"}, None),
        # No list for the language: kept, and the score says so.
        ("Whatever the words.", {"language": "xx"}, None),
    ],
)
def test_rule(text, metadata, reason):
    assert _reason(text, metadata) == reason


def test_missing_list_is_recorded():
    assert FILTER.score(TextView("text", {"language": "xx"})) == {"badwords": 0.0, "list_missing": 1.0}


def test_count_is_kept_so_a_mix_can_rethreshold():
    scores = FILTER.score(TextView(demo_record(CC_WEB, 464)["text"]))
    assert scores["badwords"] > 1
    lenient = C4BadWordsFilter(C4BadWordsConfig(words_dir=str(BADWORDS_DIR), max_badwords=int(scores["badwords"])))
    assert lenient.reject_reason(scores) is None
