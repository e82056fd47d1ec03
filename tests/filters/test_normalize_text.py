from __future__ import annotations

import gzip
import unicodedata

import ftfy
import orjson
import pytest
from helpers_lists import C4_WEB_01, CC_WEB, demo_record

from filters.base import TextView
from filters.normalize_text import NormalizeText, NormalizeTextConfig

NORMALIZE = NormalizeText(NormalizeTextConfig())
# datatrove's FTFYFormatter: ftfy's repairs only, no Unicode or whitespace normalisation.
FTFY_ONLY = NormalizeText(NormalizeTextConfig(normalization=None, normalize_whitespace=False))


def _fix_kinds(text: str) -> dict[str, float]:
    return NORMALIZE.modify(TextView(text))[1]["fixes"]


@pytest.mark.parametrize(
    ("path", "line", "before", "after", "fixes"),
    [
        # UTF-8 read as Windows-1252 (an Italian page): "Ã²" is "ò", "Â\xa0" a no-break space.
        (CC_WEB, 235, "tutti gliÂ\xa0eventiÂ\xa0che", "tutti gli eventi che", {"mojibake": 2, "whitespace": 2}),
        (CC_WEB, 235, "tutto ciÃ² che", "tutto ciò che", {"mojibake": 2, "whitespace": 2}),
        (CC_WEB, 77, "her pastâ€”and now", "her past—and now", {"mojibake": 1}),
        # Windows-1252 quotes left as C1 controls (a German Wikipedia caption).
        (CC_WEB, 665, "Foto: \x84Homburg", "Foto: „Homburg", {"mojibake": 1}),
        (C4_WEB_01, 0, "we didn&apos;t see", "we didn't see", {"unescape_html": 3}),
        # Vietnamese in decomposed form ("ả" as a + combining hook) becomes NFC.
        (CC_WEB, 285, unicodedata.normalize("NFD", "Quảng Cáo"), "Quảng Cáo", {"unicode_normalization": 2}),
    ],
)
def test_real_documents(path, line, before, after, fixes):
    text = demo_record(path, line)["text"]
    assert before in text
    new_text, measured = NORMALIZE.modify(TextView(text))
    assert after in new_text and before not in new_text
    assert measured["fixes"] == fixes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # ftfy's documented examples of real-world mojibake.
        ("âœ” No problems", "✔ No problems"),
        ("Ã\xa0 perturber la rÃ©flexion", "à perturber la réflexion"),
        ("&macr;\\_(ã\x83\x84)_/&macr;", "¯\\_(ツ)_/¯"),
        # Not mojibake: left alone, as are curly quotes, ligatures and full-width forms (datatrove's choice).
        ("Café “quoted” ﬁne ＬＯＵＤ", "Café “quoted” ﬁne ＬＯＵＤ"),
        # Markup keeps its entities: once a line holds "<", HTML is no longer unescaped.
        ("<p>a &amp; b</p>\nc &amp; d", "<p>a &amp; b</p>\nc &amp; d"),
        # Whitespace: odd spaces become spaces, line ends lose theirs (CRLF becomes LF); the ideographic
        # space and indentation stay.
        ("a\u2009b\u00a0c  \r\n\tindented\u3000x \n", "a b c\n\tindented\u3000x\n"),
    ],
)
def test_what_is_repaired(text, expected):
    assert NORMALIZE.modify(TextView(text))[0] == expected


def test_changed_spans_and_counts_are_recorded_against_the_text_before():
    text = "clean line\nbroken â€” dash\nclean\u00a0again\n"
    new_text, measured = NORMALIZE.modify(TextView(text))
    assert new_text == "clean line\nbroken — dash\nclean again\n"
    assert measured["changed_spans"] == [[11, 27, "mojibake"], [27, 39, "whitespace"]]
    assert [text[s:e] for s, e, _ in measured["changed_spans"]] == ["broken â€” dash\n", "clean\u00a0again\n"]
    assert measured["lines_changed"] == 2.0 and measured["characters_changed"] == 4.0  # 3 mojibake + 1 space
    assert measured["fixes"] == {"mojibake": 1, "whitespace": 1}


def test_unchanged_text_measures_nothing():
    text = demo_record(CC_WEB, 0)["text"]
    assert FTFY_ONLY.modify(TextView(text)) == (
        text,
        {"characters_changed": 0.0, "lines_changed": 0.0, "fixes": {}, "changed_spans": []},
    )


@pytest.mark.parametrize("path", [CC_WEB, C4_WEB_01])
def test_ftfy_repairs_equal_ftfy_fix_text_on_whole_files(path):
    # Line by line with explanations, the text is what ftfy.fix_text itself makes of the whole document.
    reference = ftfy.TextFixerConfig(
        fix_latin_ligatures=False, fix_character_width=False, uncurl_quotes=False, fix_line_breaks=False, normalization=None
    )
    with gzip.open(path, "rb") as f:
        texts = [orjson.loads(line).get("text") or "" for line in f]
    assert len(texts) > 5
    for number, text in enumerate(texts):
        assert FTFY_ONLY.modify(TextView(text))[0] == ftfy.fix_text(text, reference), number


def test_normalization_form_is_configurable():
    decomposed = unicodedata.normalize("NFD", "Quảng")
    assert NormalizeText(NormalizeTextConfig(normalization=None)).modify(TextView(decomposed))[0] == decomposed
    assert NormalizeText(NormalizeTextConfig(normalization="NFKC")).modify(TextView("ﬁ"))[0] == "fi"
