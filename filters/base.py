"""The contract every filter and text modifier follows (after datatrove's BaseFilter and Dolma's taggers).

Filters only measure (`score`) and decide from stored measurements (`reject_reason`), so a manifest can
change thresholds and re-decide without re-scoring. Text is split once per document in `TextView` and
shared by every filter in a chain.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from itertools import filterfalse
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import regex

# Words are drawn where spaCy's English tokenizer (datatrove's `split_into_words`, which the Gopher and
# FineWeb papers' reference code uses) draws them on web text, at a fraction of its cost. Text splits at
# whitespace into chunks; a chunk then sheds leading and trailing punctuation as tokens, keeps inner
# punctuation ("9/11", "@xcite", "e.g.", "U.S."), splits contractions ("do" "n't", "it" "'s"), a hyphen,
# colon, slash or comma before a letter ("well" "-" "known"), ellipses, and "." between a lowercase and
# an uppercase letter. A trailing "." stays on common abbreviations ("Mr.", "p.").
ABBREVIATIONS = (
    "Mr", "Mrs", "Ms", "Dr", "Prof", "St", "Mt", "Jr", "Sr", "Gen", "Gov", "Sen", "Rep", "Rev", "Adm",
    "Inc", "Ltd", "Co", "co", "Corp", "Bros", "vs",
    "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep", "Sept", "Oct", "Nov", "Dec",
)  # fmt: skip
_EDGE = r"\p{Ps}\p{Pe}\p{Pi}\p{Pf}\p{Sc}\"'`´,;:!?¿¡#*&_<>§%=—–~·。？！，、；：～…"
_TRAILING = rf"(?=[{_EDGE}.]*$)"
_CONTRACTION = rf"(?:[nN]['’][tT]|['’](?:[sSmMdD]|ll|LL|re|RE|ve|VE)){_TRAILING}"
_INFIX = r"(?<=[\p{L}\d])[-:<>=/,](?=\p{L})|(?<=\d)[-+*^](?=\d)|(?<=\p{Ll})\.(?=\p{Lu})"
_INNER_BREAK = rf"\.{{2,}}|…|{_INFIX}|(?<=\w){_CONTRACTION}"
_CHUNK_TOKEN = regex.compile(
    rf"(?<![^{_EDGE}])(?:{'|'.join(ABBREVIATIONS)}|[a-zäöü]|\p{{Lu}}|\p{{L}}(?:\.\p{{L}})+)\.{_TRAILING}"
    rf"|\w+(?![nN]['’][tT]){_TRAILING}"
    rf"|\.{{2,}}|…+|{_INFIX}"
    rf"|(?<=\w){_CONTRACTION}"
    rf"|[^{_EDGE}](?:(?:(?!{_INNER_BREAK}).)*(?!{_INNER_BREAK})[^{_EDGE}.])?"
    rf"|.",
    regex.V1,
)


# The commonest chunks that are not plain words, tokenized as `_CHUNK_TOKEN` does at a fraction of its
# cost: an ASCII word, a number with decimal points or thousands commas, words joined by hyphens ("well"
# "-" "known") or a word and its contraction ("it" "'s", "do" "n't"), between opening quotes or brackets
# and closing marks, each mark standing alone, as does a full stop (never two in a row). A full stop right
# after a plain word stays on it when the word is an abbreviation or a single letter.
_SIMPLE_CHUNK = re.compile(
    r"""([(\["'“‘]*)(?:([A-Za-z0-9]+)|(\d+(?:[.,]\d+)+|[A-Za-z]+(?:-[A-Za-z]+)+)"""
    r"|([A-Za-z]+?)([nN]['’][tT]|['’](?:[sSmMdD]|ll|LL|re|RE|ve|VE)))"
    r"""(\.?)((?:[,;:!?)\]"'”’%]\.?)*)"""
)
_KEEPS_FULL_STOP = frozenset(ABBREVIATIONS) | frozenset(string.ascii_letters)
_HYPHEN = re.compile("(-)")


@lru_cache(maxsize=1 << 16)
def _chunk_tokens(chunk: str) -> tuple[str, ...]:
    # Chunks repeat heavily ("it's", "end."), so each worker tokenizes each distinct chunk once.
    simple = _SIMPLE_CHUNK.fullmatch(chunk)
    if simple is None:
        return tuple(_CHUNK_TOKEN.findall(chunk))
    lead, word, joined, stem, contraction, full_stop, trail = simple.groups()
    if word is None:
        words = (stem, contraction) if joined is None else _HYPHEN.split(joined)
        return (*lead, *words, *full_stop, *trail)
    if full_stop and word in _KEEPS_FULL_STOP:
        word, full_stop = word + full_stop, ""
    return (*lead, word, *full_stop, *trail)


def split_words(text: str, chunks: list[str] | None = None) -> list[str]:
    """Word and punctuation tokens of `text` (see the rules above); `chunks`, when given, is `text.split()`."""
    words: list[str] = []
    for chunk in text.split() if chunks is None else chunks:
        if chunk.isalnum():
            words.append(chunk)
        else:
            words.extend(_chunk_tokens(chunk))
    return words


class TextView:
    """A document's text with its lines and words computed once, lazily, and shared across filters, and
    its metadata (read only), for the filters that judge by URL or language."""

    __slots__ = ("__dict__", "metadata", "text")

    def __init__(self, text: str, metadata: Mapping[str, Any] | None = None):
        self.text = text
        self.metadata = metadata if metadata is not None else {}

    @cached_property
    def lines(self) -> list[str]:
        """Lines split at every Unicode line boundary (`\r\n`, `\r`, `\u2028`...), without the breaks."""
        return self.text.splitlines()

    @cached_property
    def nonblank_lines(self) -> list[str]:
        """Lines with at least one non-whitespace character, unstripped."""
        return [line for line in self.lines if line and not line.isspace()]

    @cached_property
    def chunks(self) -> list[str]:
        """The text split at whitespace (`str.split()`), where both the word split and fastText start."""
        return self.text.split()

    @cached_property
    def words(self) -> list[str]:
        return split_words(self.text, self.chunks)

    @cached_property
    def word_count(self) -> int:
        """`len(self.words)`, without building the list when no filter needs the words themselves: a plain
        word is one token, so only the other chunks are tokenized."""
        if "words" in self.__dict__:
            return len(self.words)
        chunks = self.chunks
        return len(chunks) + sum(len(_chunk_tokens(chunk)) - 1 for chunk in filterfalse(str.isalnum, chunks))

    @cached_property
    def word_labels(self) -> np.ndarray:
        """Each word labelled by the position where it first occurs: equal words, equal labels."""
        words = self.words
        first_positions: dict[str, int] = {}
        return np.fromiter(map(first_positions.setdefault, words, range(len(words))), np.int64, len(words))


@runtime_checkable
class DocumentFilter(Protocol):
    """A scoring filter. `name` carries the version (`gopher_quality_v1`); scores are plain floats."""

    name: ClassVar[str]

    def setup(self) -> None:
        """Load heavy resources (models, indexes) once per worker; cheap filters do nothing."""

    def score(self, view: TextView) -> dict[str, float]:
        """Measure the text. Pure: the same text gives the same scores."""

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        """The short reason string that drops this document, or None to keep it."""


@runtime_checkable
class TextModifier(Protocol):
    """A step that rewrites text (C4 line removal). Explicitly named: filters never quietly rewrite."""

    name: ClassVar[str]

    def setup(self) -> None: ...

    def modify(self, view: TextView) -> tuple[str, dict[str, float]]:
        """The new text and measurements of what was removed (e.g. `lines_removed`)."""


@dataclass(frozen=True, slots=True)
class FilterSpec:
    """How a manifest names a filter: the registry key (`use`) and its overrides."""

    use: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Bound:
    """A threshold rule: the config field `limit` (named `min_*` or `max_*`) bounds the score `signal`.

    The prefix gives the direction, so a field named `min_words` cannot be used as a maximum.
    """

    signal: str
    limit: str
    reason: str

    def __post_init__(self) -> None:
        if not self.limit.startswith(("min_", "max_")):
            raise ValueError(f"bound limit {self.limit!r} must be named min_* or max_*")

    def violated(self, scores: dict[str, float], config: Any) -> bool:
        threshold = getattr(config, self.limit)
        if threshold is None:
            return False
        value = scores[self.signal]
        return value < threshold if self.limit.startswith("min_") else value > threshold


def first_violated(bounds: tuple[Bound, ...], scores: dict[str, float], config: Any) -> str | None:
    """The reason of the first bound the scores violate, in rule order; None when all hold."""
    return next((b.reason for b in bounds if b.violated(scores, config)), None)


def bounded_score(bounds: tuple[Bound, ...], scores: dict[str, float], reason: str) -> float | None:
    """The score a rejection reason was decided on (the ledger's headline number)."""
    return next((scores[b.signal] for b in bounds if b.reason == reason), None)
