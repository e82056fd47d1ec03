from __future__ import annotations

import pytest

from curation.config import ConfigError
from filters.base import Bound, DocumentFilter, TextModifier
from filters.registry import FILTERS, build_chain, build_filter

REQUIRED = {
    "quality_classifier_v1": {"model": "models/hq.bin", "min_score": 0.5},
    "c4_badwords_v1": {"words_dir": "lists/ldnoobw"},
}


@pytest.mark.parametrize("name", sorted(FILTERS))
def test_builds_every_filter_from_a_spec_with_its_versioned_name(name):
    step = build_filter({"use": name, **REQUIRED.get(name, {})})
    assert step.name == name and name.rsplit("_", 1)[-1].startswith("v")
    assert isinstance(step, (DocumentFilter, TextModifier))


def test_overrides_reach_the_config():
    (step,) = build_chain([{"use": "gopher_quality_v1", "min_words": 20}])
    assert step.config.min_words == 20


def test_refuses_unknown_filter_with_close_matches():
    with pytest.raises(ConfigError, match="did you mean 'gopher_quality_v1'"):
        build_filter({"use": "gopher_quality"})


def test_refuses_unknown_field_with_close_matches():
    with pytest.raises(ConfigError, match=r"filters\[0\].max_word.*did you mean 'max_words'"):
        build_chain([{"use": "gopher_quality_v1", "max_word": 5}])


def test_refuses_wrong_type():
    with pytest.raises(ConfigError, match="min_score"):
        build_filter({"use": "language_v1", "min_score": "high"})


def test_bound_names_must_state_direction():
    with pytest.raises(ValueError, match="min_"):
        Bound("words", "words_limit", "too_few_words")
