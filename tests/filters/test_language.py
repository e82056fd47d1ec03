from __future__ import annotations

import pytest
from helpers_quality import GOOD_PARAGRAPH

from filters.base import TextView
from filters.language import LanguageConfig, LanguageFilter, top_language

GERMAN = "Der Fluss stieg langsam durch die Nacht, und am Morgen standen die unteren Felder unter Wasser."
ENGLISH_FILTER = LanguageFilter(LanguageConfig(languages=["en"]))


@pytest.mark.parametrize(("text", "reason"), [(GOOD_PARAGRAPH, None), (GERMAN, "wrong_language")])
def test_language_rejects_with_reason(text, reason):
    assert ENGLISH_FILTER.reject_reason(ENGLISH_FILTER.score(TextView(text))) == reason


def test_batch_scores_equal_single_scores_and_name_the_top_language():
    views = [TextView(GOOD_PARAGRAPH), TextView(GERMAN + "\n" + GERMAN)]
    batch = ENGLISH_FILTER.score_batch(views)
    assert batch == [ENGLISH_FILTER.score(v) for v in views]
    assert top_language(batch[0])[0] == "en" and batch[0]["en"] > 0.9
    assert top_language(batch[1])[0] == "de" and batch[1]["en"] < 0.1


def test_without_languages_keeps_any_confident_language():
    any_language = LanguageFilter(LanguageConfig(languages=[]))
    assert any_language.reject_reason(any_language.score(TextView(GERMAN))) is None
    assert any_language.reject_reason(any_language.score(TextView("ok 42"))) == "uncertain_language"


def test_paragraph_scores_give_the_share_of_each_language():
    mixed = LanguageFilter(LanguageConfig(languages=["en", "de"], score_paragraphs=True))
    scores = mixed.score(TextView(GOOD_PARAGRAPH + "\n" + GERMAN))
    english_share = len(GOOD_PARAGRAPH) / (len(GOOD_PARAGRAPH) + len(GERMAN))
    assert scores["paragraph_fraction_en"] == pytest.approx(english_share)
    assert scores["paragraph_fraction_de"] == pytest.approx(1 - english_share)
