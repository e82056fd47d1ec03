"""Span edits on a kept document: repeated paragraphs are cut out (Dolma's paragraph dedup), and
contaminated regions split the document into pieces (GPT-3 / NeMo decontamination). Offsets refer to the
pool text the decisions were computed on."""

from __future__ import annotations

import dataclasses
from typing import Any, Iterator

from curation.document import Document


def merge_spans(spans: list[list[int]] | list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def pieces_between(length: int, cuts: list[tuple[int, int]]) -> list[tuple[int, int]]:
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
    keep = pieces_between(len(text), [(max(s, offset) - offset, min(e, end) - offset) for s, e in spans if e > offset and s < end])
    return "".join(text[a:b] for a, b in keep)


def apply_edit(doc: Document, edit: dict[str, Any]) -> Iterator[Document]:
    """The document's surviving pieces: paragraph spans removed, contaminated regions split out.

    A document with no contaminated region stays one document under its own id; split pieces get ids
    `{id}#part{k}` and keep the provenance of the original, and pieces under `min_piece_chars` are dropped.
    """
    paragraphs = merge_spans(edit.get("paragraph", []))
    cuts = merge_spans(edit.get("decontaminate", []))
    if not cuts:
        text = remove_within(doc.text, 0, paragraphs)
        if text.strip():
            yield dataclasses.replace(doc, text=text)
        return
    min_piece_chars = int(edit.get("min_piece_chars", 0))
    for k, (start, end) in enumerate(pieces_between(len(doc.text), cuts)):
        text = remove_within(doc.text[start:end], start, paragraphs)
        if len(text.strip()) >= max(min_piece_chars, 1):
            yield dataclasses.replace(doc, id=f"{doc.id}#part{k}", text=text, attributes=dict(doc.attributes))
