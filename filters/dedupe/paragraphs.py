"""Paragraph-level exact dedup as span edits, after Dolma's paragraph dedupe (a paragraph is a line).

Each line long enough to matter is hashed with its character span; repeated lines are removed as
spans that include their newline, so removing them leaves no blank lines behind.
"""

from __future__ import annotations

from typing import NamedTuple

from filters.dedupe.normalize import key_digest


class Paragraph(NamedTuple):
    digest: bytes
    start: int
    end: int


def paragraphs(text: str, min_paragraph_chars: int) -> list[Paragraph]:
    """Lines of `text` at least `min_paragraph_chars` long once stripped, with their char spans
    (the span covers the trailing newline when there is one)."""
    out = []
    start = 0
    for line in text.split("\n"):
        end = start + len(line)
        stripped = line.strip()
        if len(stripped) >= min_paragraph_chars:
            out.append(Paragraph(key_digest(stripped), start, min(end + 1, len(text))))
        start = end + 1
    return out


def apply_paragraph_edits(text: str, spans: list[tuple[int, int]]) -> str:
    """`text` without the given (start, end) character spans; spans may come in any order."""
    pieces = []
    cursor = 0
    for start, end in sorted(spans):
        if start > cursor:
            pieces.append(text[cursor:start])
        cursor = max(cursor, end)
    pieces.append(text[cursor:])
    return "".join(pieces)
