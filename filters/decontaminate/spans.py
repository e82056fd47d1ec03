"""Cutting contaminated spans out of a document, as GPT-3 and NeMo Curator do: each matched span is removed
with a margin of characters either side, the document is split there, short pieces are dropped and a
document split too many times is dropped whole.
"""

from __future__ import annotations

from dataclasses import replace

from curation.document import PIECE_MARK, Document, text_hash
from filters.decontaminate.index import FILTER_NAME

TOO_MANY_SPLITS = "too_many_splits"
NO_PIECE_LEFT = "no_piece_left"


def cut_ranges(spans: list[tuple[int, int]], text_length: int, margin_chars: int) -> list[tuple[int, int]]:
    """The character ranges removed: each span widened by the margin, overlapping ranges merged."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        start, end = max(0, start - margin_chars), min(text_length, end + margin_chars)
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def remove_spans(
    doc: Document, spans: list[tuple[int, int]], margin_chars: int, min_piece_chars: int, max_splits: int
) -> list[Document] | str:
    """The pieces of `doc` left after cutting `spans`, or the reason the whole document goes.

    Pieces are `{id}#part{k}` (k counts kept pieces), keep the provenance with their own text digest,
    and record where they start and end in the original text as attributes.
    """
    cuts = cut_ranges(spans, len(doc.text), margin_chars)
    if len(cuts) > max_splits:
        return TOO_MANY_SPLITS
    bounds = [0, *(b for cut in cuts for b in cut), len(doc.text)]
    pieces = []
    for start, end in zip(bounds[::2], bounds[1::2]):
        text = doc.text[start:end].strip()
        if len(text) < min_piece_chars:
            continue
        start += len(doc.text[start:end]) - len(doc.text[start:end].lstrip())
        pieces.append(_piece(doc, len(pieces), text, start))
    return pieces or NO_PIECE_LEFT


def _piece(doc: Document, k: int, text: str, start: int) -> Document:
    provenance = replace(doc.provenance, text_hash=text_hash(text)) if doc.provenance else None
    attributes = {
        **doc.attributes,
        f"{FILTER_NAME}/piece_start_char": start,
        f"{FILTER_NAME}/piece_end_char": start + len(text),
    }
    return replace(
        doc,
        id=f"{doc.id}{PIECE_MARK}{k}",
        text=text,
        metadata=dict(doc.metadata),
        attributes=attributes,
        provenance=provenance,
    )
