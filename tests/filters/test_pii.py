from __future__ import annotations

import pytest
from helpers_lists import C4_WEB, CC_WEB, demo_record
from helpers_quality import web_corpus_texts

from filters.base import TextView
from filters.pii import _HINTS, PIIMask, PIIMaskConfig

MASK = PIIMask(PIIMaskConfig())


def _masked(text: str) -> list[tuple[str, str]]:
    _, measured = MASK.modify(TextView(text))
    return [(kind, text[start:end]) for start, end, kind in measured["masked_spans"]]


@pytest.mark.parametrize(
    ("path", "line", "expected"),
    [
        (C4_WEB, 8, [("PHONE_NUMBER", "888-459-0005")] * 4),  # the number appears four times
        (CC_WEB, 41, [("PHONE_NUMBER", "330-788-8771")]),
        (CC_WEB, 269, [("PHONE_NUMBER", "(612) 439-4474")]),
        (CC_WEB, 133, [("PHONE_NUMBER", "+441474556909")]),
        (CC_WEB, 126, [("EMAIL_ADDRESS", "ajuntament@palafrugell.cat")]),
        (CC_WEB, 204, [("PHONE_NUMBER", "+49 561 9804848"), ("EMAIL_ADDRESS", "karriere@gnh.net")]),
        (CC_WEB, 0, []),
    ],
)
def test_real_documents(path, line, expected):
    assert sorted(_masked(demo_record(path, line)["text"])) == sorted(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A public address is masked; a private one identifies nobody.
        ("створення користувача:195.234.74.142\n", [("IP_ADDRESS", "195.234.74.142")]),
        ("router at 192.168.1.1 by default", []),
        ("server 2001:4860:4860::8888 answered", [("IP_ADDRESS", "2001:4860:4860::8888")]),
        # Version numbers and code are not addresses (real lines of the shared corpora).
        ("收录于版本8.0.1.27165", []),
        ("  integer,intent(in)::a,b", []),
        ("ISBN 9780306406157 and order 2019-07-17", []),
        # An IP literal inside an address is part of the e-mail.
        ("write to admin@[8.8.8.8] today", [("EMAIL_ADDRESS", "admin@[8.8.8.8]")]),
    ],
)
def test_what_is_and_is_not_pii(text, expected):
    assert _masked(text) == expected


def test_placeholders_counts_and_spans():
    text = "Mail bob@uwm.edu.pl or call 330-788-8771 from 8.8.8.8."
    new_text, measured = MASK.modify(TextView(text))
    assert new_text == "Mail |||EMAIL_ADDRESS||| or call |||PHONE_NUMBER||| from |||IP_ADDRESS|||."
    assert (measured["email_addresses"], measured["phone_numbers"], measured["ip_addresses"]) == (1.0, 1.0, 1.0)
    assert measured["masked_spans"] == [[5, 19, "EMAIL_ADDRESS"], [28, 40, "PHONE_NUMBER"], [46, 53, "IP_ADDRESS"]]


def test_kinds_can_be_switched_off():
    only_email = PIIMask(PIIMaskConfig(mask_phone_numbers=False, mask_ip_addresses=False))
    new_text, _ = only_email.modify(TextView("bob@uwm.edu.pl 330-788-8771 8.8.8.8"))
    assert new_text == "|||EMAIL_ADDRESS||| 330-788-8771 8.8.8.8"


def test_every_match_holds_the_hint_searched_for_first():
    # A document without its hint is skipped by that pattern: sound only if no match lacks the hint.
    texts = [*web_corpus_texts(), "call +1 (612) 439-4474", "+49 561 9804848", "::ffff:8.8.8.8 and 2001:db8::1"]
    matches = 0
    for pattern, hint in _HINTS.items():
        for text in texts:
            for m in pattern.finditer(text):
                matches += 1
                assert hint.search(text[m.start() : m.end() + 1]), (pattern.pattern, m.group())
    assert matches > 500
