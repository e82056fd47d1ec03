from __future__ import annotations

import pytest
from helpers_lists import CC_WEB, demo_record, fineweb_url_lists

from curation.config import ConfigError
from filters.base import TextView
from filters.registry import build_filter
from filters.url_blocklist import URLBlocklistConfig, URLBlocklistFilter

FILTER = URLBlocklistFilter(URLBlocklistConfig(**fineweb_url_lists()))
# Without the URL list, so entries of it show the word rules that would catch them anyway.
WORD_RULES = URLBlocklistFilter(URLBlocklistConfig(**fineweb_url_lists(urls_file=None)))


def _reason(flt: URLBlocklistFilter, url: str | None) -> str | None:
    return flt.reject_reason(flt.score(TextView("", {"url": url} if url else {})))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (0, None),  # 16thfleet.wikidot.com/chatter:anewhome
        (17, None),  # biologiaolsztyn.blogspot.com/2016/12/
        (193, "url_banned_word"),  # www.flechazosbdsm.com/eventos-y-fiestas-bdsm/...: "bdsm"
    ],
)
def test_real_document_urls(line, reason):
    assert _reason(FILTER, demo_record(CC_WEB, line)["metadata"]["url"]) == reason


@pytest.mark.parametrize(
    ("url", "filter_", "reason"),
    [
        # Entries of the FineWeb URL list, with and without a scheme (the list has none).
        ("come.to/bah", FILTER, "url_blocked_url"),
        ("http://come.to/bah", FILTER, "url_blocked_url"),
        ("come.to/bah", WORD_RULES, None),
        ("evexxx.me/xxx", WORD_RULES, "url_banned_word"),
        ("kqx.in/lesbian-sex", WORD_RULES, "url_soft_banned_words"),
        ("sexvideo.click/de", WORD_RULES, "url_banned_subword"),
        # One soft-banned word is allowed (a real URL of the shared corpora).
        ("squammie.wordpress.com/tag/sex-drive/", FILTER, None),
        # Words are compared lowercased.
        ("evexxx.me/XXX", WORD_RULES, "url_banned_word"),
        (None, FILTER, None),
    ],
)
def test_list_entries(url, filter_, reason):
    assert _reason(filter_, url) == reason


def test_document_without_url_is_kept_and_marked():
    assert FILTER.score(TextView("text", {})) == {"url_missing": 1.0}


def test_domain_and_hostname_blocklist(tmp_path):
    domains = tmp_path / "domains.txt"
    domains.write_text("# adult domains\nwikidot.com\nwww.flechazosbdsm.com\n")
    flt = URLBlocklistFilter(URLBlocklistConfig(domains_file=str(domains)))
    assert _reason(flt, "16thfleet.wikidot.com/chatter:anewhome") == "url_blocked_domain"
    assert _reason(flt, "https://www.flechazosbdsm.com/eventos") == "url_blocked_hostname"
    # A hostname whose registered domain (blogspot.com) is not listed is kept.
    assert _reason(flt, "biologiaolsztyn.blogspot.com/2016/12/") is None


def test_soft_word_threshold_is_a_decision_not_a_score():
    scores = WORD_RULES.score(TextView("", {"url": "kqx.in/lesbian-sex"}))
    assert scores["soft_banned_words"] == 2.0
    lenient = URLBlocklistFilter(URLBlocklistConfig(**fineweb_url_lists(urls_file=None), max_soft_banned_words=2))
    assert lenient.reject_reason(scores) is None
    assert WORD_RULES.reason_score(scores, "url_soft_banned_words") == 2.0


def test_unknown_option_is_refused_with_close_match():
    with pytest.raises(ConfigError, match="domain_file: unknown field.*domains_file"):
        build_filter({"use": "url_blocklist_v1", "domain_file": "x.txt"})
