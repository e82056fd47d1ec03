"""Span edits on a kept document: repeated paragraphs are cut out (Dolma's paragraph dedup), and
contaminated regions split the document into pieces (GPT-3 / NeMo decontamination). Offsets refer to the
pool text the decisions were computed on."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from curation.document import Document
from filters.decontaminate.index import FILTER_NAME as DECON_FILTER
from filters.decontaminate.spans import remove_spans


def merge_spans(spans: list[list[int]] | list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def _kept_ranges(length: int, cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The [start, end) ranges of a text of `length` characters left when `cuts` are removed."""
    pieces, pos = [], 0
    for start, end in cuts:
        if start > pos:
            pieces.append((pos, start))
        pos = max(pos, end)
    if pos < length:
        pieces.append((pos, length))
    return pieces


def remove_within(text: str, offset: int, spans: list[tuple[int, int]]) -> str:
    """text (which starts at `offset` of the original) without the parts covered by `spans`."""
    end = offset + len(text)
    keep = _kept_ranges(len(text), [(max(s, offset) - offset, min(e, end) - offset) for s, e in spans if e > offset and s < end])
    return "".join(text[a:b] for a, b in keep)


def apply_edit(doc: Document, edit: dict[str, Any]) -> Iterator[Document]:
    """The document's surviving pieces: contaminated regions split out first (pieces `{id}#part{k}`,
    as the decontamination stage decided them), then repeated paragraphs removed from what is left."""
    paragraphs = merge_spans(edit.get("paragraph", []))
    cuts = merge_spans(edit.get("decontaminate", []))
    if cuts:
        # The cut ranges already carry their margins: split with no further margin and no split limit.
        pieces = remove_spans(doc, cuts, 0, int(edit.get("min_piece_chars", 0)), max_splits=len(cuts))
        if isinstance(pieces, str):
            return
    else:
        pieces = [doc]
    for piece in pieces:
        start = int(piece.attributes.get(f"{DECON_FILTER}/piece_start_char", 0))
        text = remove_within(piece.text, start, paragraphs)
        if text.strip():
            yield dataclasses.replace(piece, text=text) if text != piece.text else piece
