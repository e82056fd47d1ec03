"""Text normalisation before scoring, as datatrove's FTFYFormatter and NeMo Curator's UnicodeReformatter do:
ftfy's mojibake and encoding repair (Speer 2019), Unicode normalisation (NFC by default) and whitespace
normalisation, recorded as a modifier: each changed line's span and the fixes applied are kept for audit.

The ftfy defaults are datatrove 0.10's FTFYFormatter's: encoding repairs, HTML entities ("auto"), terminal
escapes and control characters on; fixes that impose one typography (ligatures, full-width characters,
curly quotes, line breaks) off. Whitespace normalisation turns every Unicode space separator but the
ideographic space (CJK's own full-width space) into an ASCII space and removes whitespace at line ends.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Literal

import ftfy

from filters.base import TextView

# Space separators (Unicode Zs) but U+0020 and U+3000; and whitespace before a line break or the text's end.
_ODD_SPACE = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f]")
_LINE_END_SPACE = re.compile(r"[ \t\r\f\v]+(?=\n|\Z)")
# ftfy's explanation steps, named by the fix they belong to: any re-encoding is mojibake repair.
_STEP_FIX = {"encode": "mojibake", "decode": "mojibake", "normalize": "unicode_normalization"}
WHITESPACE = "whitespace"


@dataclass(frozen=True)
class NormalizeTextConfig:
    fix_encoding: bool = True
    # "auto": unescape HTML entities until a line with "<" appears (then the text is markup, left alone).
    unescape_html: bool | Literal["auto"] = "auto"
    remove_terminal_escapes: bool = True
    remove_control_chars: bool = True
    fix_latin_ligatures: bool = False
    fix_character_width: bool = False
    uncurl_quotes: bool = False
    fix_line_breaks: bool = False
    normalization: Literal["NFC", "NFD", "NFKC", "NFKD"] | None = "NFC"
    normalize_whitespace: bool = True


def normalize_whitespace(text: str, ends_line: bool = True) -> tuple[str, int]:
    """The text with odd spaces made plain and, if it ends a line, the line-end spaces removed; and how many
    characters that replaced or removed."""
    spaced, replaced = _ODD_SPACE.subn(" ", text)
    if not ends_line:
        return spaced, replaced
    stripped = _LINE_END_SPACE.sub("", spaced)
    return stripped, replaced + len(spaced) - len(stripped)


def _fixes(steps: list) -> set[str]:
    return {_STEP_FIX.get(action, parameter) for action, parameter in steps}


def _changed_characters(before: str, after: str) -> int:
    """Characters replaced, removed or added between two versions of a line (the longer side of each edit)."""
    edits = difflib.SequenceMatcher(None, before, after, autojunk=False).get_opcodes()
    return sum(max(i2 - i1, j2 - j1) for op, i1, i2, j1, j2 in edits if op != "equal")


class NormalizeText:
    """Repairs and normalises text line by line; measures the characters and lines changed, the lines each
    fix changed, and records each changed line as [start, end, fixes] in the text as it was before."""

    name: ClassVar[str] = "normalize_text_v1"
    Config = NormalizeTextConfig

    def __init__(self, config: NormalizeTextConfig):
        self.config = config
        options = {name: getattr(config, name) for name in ftfy.TextFixerConfig._fields if hasattr(config, name)}
        self._ftfy = ftfy.TextFixerConfig(**options, explain=True)

    def setup(self) -> None:
        """Nothing to load."""

    def modify(self, view: TextView) -> tuple[str, dict]:
        text, ftfy_config = view.text, self._ftfy
        pieces, spans, per_fix = [], [], Counter()
        characters_changed = 0
        position = 0
        # ftfy.fix_text's own segmentation (lines, each at most max_decode_length), with its switch of
        # "auto" HTML unescaping off for good at the first line holding "<": fix_text gives no
        # explanations, so each segment goes through fix_and_explain here.
        while position < len(text):
            end = text.find("\n", position) + 1 or len(text)
            end = min(end, position + ftfy_config.max_decode_length)
            segment = text[position:end]
            if ftfy_config.unescape_html == "auto" and "<" in segment:
                ftfy_config = ftfy_config._replace(unescape_html=False)
            fixed, steps = ftfy.fix_and_explain(segment, ftfy_config)
            fixes = _fixes(steps)
            # ftfy's changes are rare and need a diff to count; whitespace changes count themselves.
            changed = _changed_characters(segment, fixed) if fixes else 0
            if self.config.normalize_whitespace:
                # A segment cut inside an overlong line does not end a line: its end keeps its spaces.
                fixed, spaces = normalize_whitespace(fixed, ends_line=segment.endswith("\n") or end == len(text))
                if spaces:
                    fixes.add(WHITESPACE)
                    changed += spaces
            if fixes:
                per_fix.update(fixes)
                spans.append([position, end, "+".join(sorted(fixes))])
                characters_changed += changed
            pieces.append(fixed)
            position = end
        return "".join(pieces), {
            "characters_changed": float(characters_changed),
            "lines_changed": float(len(spans)),
            "fixes": dict(sorted(per_fix.items())),
            "changed_spans": spans,
        }
