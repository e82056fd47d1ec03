"""C4 rules (Raffel et al. 2020, section 2.2; TFDS `c4_utils`): line rules, a line-removal modifier and
document rules (lorem ipsum, curly bracket, too few sentences).

Line rules follow datatrove 0.10's C4QualityFilter: a line is kept when, after removing Wikipedia-style
citations, it ends in terminal punctuation (not an ellipsis), has enough words, no overlong word, and
mentions neither JavaScript nor a cookie/terms policy. The document rules look only at lines that reach
them in that order, as TFDS does. Removing lines is the separate, explicitly named `c4_line_removal_v1`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import regex

from filters.base import Bound, TextView, first_violated

_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")
_TERMINAL_PUNCTUATION = (".", "?", "!", '"', "'")
_POLICY_PHRASES = (
    "terms of use",
    "privacy policy",
    "cookie policy",
    "uses cookies",
    "use of cookies",
    "use cookies",
)
# Sentence breaks as spaCy's English tokenizer and sentencizer (used by TFDS-style C4 ports) draw them:
# "!", "?" and other sentence terminals end a sentence; so does "." standing alone or after a lowercase
# or uncased letter, a digit, punctuation or two capitals, unless it is part of an ellipsis, of "e.g."
# or of a common abbreviation ("Mr.", "p."). Closing punctuation and opening quotes may sit between
# the break and the next word; "end.Next" breaks without a space.
_ABBREVIATIONS = (
    "Mr|Mrs|Ms|Dr|Prof|St|Mt|Jr|Sr|Gen|Gov|Sen|Rep|Rev|Adm|Inc|Ltd|Co|co|Corp|Bros|vs|"
    "Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|[a-zäöü]"
)
_SENTENCE_BREAK = regex.compile(
    r"(?:(?<=^|\s|[\p{Ll}\p{Lo}\d%²+\-\p{P}--[.]]|[\p{Lu}\p{Lo}][\p{Lu}\p{Lo}])"
    r"(?<![.]|[.]\p{L}|(?:^|[\s(\[\"'])(?:" + _ABBREVIATIONS + r"))\.(?![.])"
    r"|[\p{Sentence_Terminal}--[.]])[\p{P}\s]*\s[\p{P}\s]*(?=\w)"
    r"|(?<=\p{Ll})\.(?=\p{Lu})",
    regex.V1,
)


@dataclass(frozen=True)
class C4LineRulesConfig:
    """Which lines C4 keeps. These shape the measurements, so changing one means re-scoring."""

    remove_citations: bool = True
    require_terminal_punctuation: bool = True
    line_min_words: int = 3
    line_max_word_chars: int = 1000
    drop_javascript_lines: bool = True
    drop_policy_lines: bool = True


@dataclass(frozen=True)
class C4QualityConfig(C4LineRulesConfig):
    min_sentences: int | None = 5
    drop_lorem_ipsum: bool = True
    drop_curly_bracket: bool = True

    DECISION_FIELDS: ClassVar[tuple[str, ...]] = ("drop_lorem_ipsum", "drop_curly_bracket")


@dataclass(frozen=True, slots=True)
class C4Line:
    """One line's fate: its text (citations removed), the line rule that drops it ("" when kept), and
    whether it reached TFDS's document checks with "lorem ipsum" or a curly bracket in it."""

    text: str
    dropped_by: str
    lorem_ipsum: bool = False
    curly_bracket: bool = False


def c4_lines(view: TextView, rules: C4LineRulesConfig) -> Iterator[C4Line]:
    """Every line with the first line rule that drops it, in TFDS's order (lorem ipsum is checked before
    the JavaScript rule, the curly bracket after it)."""
    # A line's words are among the text's chunks (every line break is whitespace), so a text without an
    # overlong chunk spares each of its long lines the split.
    overlong_chunk = None
    for raw in view.lines:
        line = raw.strip()
        if len(line) > rules.line_max_word_chars:
            if overlong_chunk is None:
                overlong_chunk = max(map(len, view.chunks)) > rules.line_max_word_chars
            if overlong_chunk and max(map(len, line.split())) > rules.line_max_word_chars:
                yield C4Line(line, "too_long_word")
                continue
        # Only the words before the citations go, and only up to the minimum count: the rule needs no more.
        words = line.split(None, rules.line_min_words)
        if rules.remove_citations and "[" in line:
            line = _CITATION.sub("", line)
        if rules.require_terminal_punctuation and (
            not line.endswith(_TERMINAL_PUNCTUATION) or line.endswith("...")
        ):
            yield C4Line(line, "no_terminal_punctuation")
            continue
        if len(words) < rules.line_min_words:
            yield C4Line(line, "too_few_words")
            continue
        lowered = line.lower()
        lorem_ipsum = "lorem ipsum" in lowered
        if rules.drop_javascript_lines and "javascript" in lowered:
            yield C4Line(line, "javascript", lorem_ipsum)
            continue
        curly_bracket = "{" in line
        if rules.drop_policy_lines and any(p in lowered for p in _POLICY_PHRASES):
            yield C4Line(line, "policy", lorem_ipsum, curly_bracket)
            continue
        yield C4Line(line, "", lorem_ipsum, curly_bracket)


def count_sentences(line: str) -> int:
    return 1 + len(_SENTENCE_BREAK.findall(line)) if line else 0


def c4_quality_scores(view: TextView, rules: C4LineRulesConfig) -> dict[str, float]:
    """Sentences in the kept lines, and whether "lorem ipsum" or "{" reach the document rules."""
    sentences = lorem_ipsum = curly_bracket = 0
    for line in c4_lines(view, rules):
        lorem_ipsum |= line.lorem_ipsum
        curly_bracket |= line.curly_bracket
        if line.dropped_by == "":
            sentences += count_sentences(line.text)
    return {
        "sentences": float(sentences),
        "lorem_ipsum": float(lorem_ipsum),
        "curly_bracket": float(curly_bracket),
    }


_BOUNDS = (Bound("sentences", "min_sentences", "c4_too_few_sentences"),)
_REASON_SIGNAL = {
    "c4_lorem_ipsum": "lorem_ipsum",
    "c4_curly_bracket": "curly_bracket",
    "c4_too_few_sentences": "sentences",
}


class C4QualityFilter:
    name: ClassVar[str] = "c4_quality_v1"
    Config = C4QualityConfig

    def __init__(self, config: C4QualityConfig):
        self.config = config

    def setup(self) -> None:
        """Nothing to load: the rules are plain arithmetic on the shared word split."""

    def score(self, view: TextView) -> dict[str, float]:
        return c4_quality_scores(view, self.config)

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        # TFDS meets lorem ipsum and curly brackets line by line; either one ends the document, and
        # checking them before the sentence count gives the same verdict.
        if self.config.drop_lorem_ipsum and scores["lorem_ipsum"]:
            return "c4_lorem_ipsum"
        if self.config.drop_curly_bracket and scores["curly_bracket"]:
            return "c4_curly_bracket"
        return first_violated(_BOUNDS, scores, self.config)

    def reason_score(self, scores: dict[str, float], reason: str) -> float | None:
        return scores[_REASON_SIGNAL[reason]]


class C4LineRemoval:
    """Keeps only the lines C4's line rules keep (citations removed), joined by newlines."""

    name: ClassVar[str] = "c4_line_removal_v1"
    Config = C4LineRulesConfig

    def __init__(self, config: C4LineRulesConfig):
        self.config = config

    def setup(self) -> None:
        """Nothing to load: the rules are plain arithmetic on the shared word split."""

    def modify(self, view: TextView) -> tuple[str, dict[str, float]]:
        lines = list(c4_lines(view, self.config))
        kept = [line.text for line in lines if line.dropped_by == ""]
        return "\n".join(kept).strip(), {
            "lines_removed": float(len(lines) - len(kept)),
            "lines": float(len(lines)),
        }
