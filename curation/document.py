"""Dolma-compatible document records with attributes and provenance.

A document is the Dolma JSON shape (`id`, `text`, `source`, `added`, `created`, `metadata`) plus
`attributes` (scores keyed `{filter_name}/{signal}`) and `provenance` (where the text was read).
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass, field
from typing import Any

import xxhash

# How a document is named across the run: ids are unique only within a source.
DocKey = tuple[str, str]  # (source, doc id)

# Decontamination splits a document into pieces named `{id}#part{k}`, so no input id may contain it.
PIECE_MARK = "#part"
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def base_id(doc_id: str) -> str:
    """The id of the document a decontamination piece was cut from (the id itself for a whole document)."""
    return doc_id.split(PIECE_MARK, 1)[0]


def id_problem(doc_id: object) -> str | None:
    """Why `doc_id` cannot name a document (ledgers, audit and shard indexes key on it), or None."""
    if not isinstance(doc_id, str):
        # A list, object, float or boolean id would only name a document by its Python spelling.
        return f"id is a {type(doc_id).__name__}, not a string or an integer"
    if not doc_id:
        return "empty id"
    if _CONTROL_CHARACTER.search(doc_id):
        return "id has a control character"
    if PIECE_MARK in doc_id:
        return f"id contains the reserved {PIECE_MARK!r}"
    return None


def text_hash(text: str) -> str:
    """Content digest of a text: 128-bit xxh3, hex. Fast enough to compute for every document."""
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8", "surrogatepass"))


def stable_id(source: str, name: str, position: int, root: str | None = None) -> str:
    """An id for a record that has none, stable across runs: digest of (source, input file, position).

    The file is named as outputs name it (curation.places): a local one relative to the manifest's folder,
    also when it lies beside it rather than below (`../../data/...`, as the demo's), so a checkout of the
    same manifest and data in another place gives the same ids, hence the same sampling and order. A source
    with an id root gives `root`, the manifest's folder as seen from that root, and the file is named from
    the id root instead. S3 objects keep their full URI.
    """
    if root and "://" not in name and "://" not in root:
        name = posixpath.normpath(posixpath.join(root, name))
    return xxhash.xxh3_128_hexdigest(f"{source}\x00{name}\x00{position}".encode())


@dataclass(slots=True)
class Provenance:
    """Where a document was read: the input URI and its line (JSONL), row (Parquet) or byte offset (WARC)."""

    uri: str
    line: int | None = None
    offset: int | None = None
    text_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"uri": self.uri, "line": self.line, "offset": self.offset, "text_hash": self.text_hash}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Provenance:
        return cls(d["uri"], d.get("line"), d.get("offset"), d.get("text_hash", ""))


@dataclass(slots=True)
class Document:
    id: str
    text: str
    source: str
    added: str | None = None
    created: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    provenance: Provenance | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "source": self.source,
            "added": self.added,
            "created": self.created,
            "metadata": self.metadata,
        }
        if self.attributes:
            out["attributes"] = self.attributes
        if self.provenance is not None:
            out["provenance"] = self.provenance.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Document:
        prov = d.get("provenance")
        return cls(
            id=d["id"],
            text=d["text"],
            source=d["source"],
            added=d.get("added"),
            created=d.get("created"),
            metadata=d.get("metadata") or {},
            attributes=d.get("attributes") or {},
            provenance=Provenance.from_dict(prov) if prov else None,
        )

    @property
    def url(self) -> str | None:
        return self.metadata.get("url")


@dataclass(slots=True, frozen=True)
class Rejection:
    """One ledger row: a document (or a span of one) that does not reach the output, and why.

    `filter` is `name@version`; `reason` is the short string also used as the counter name.
    `detail` carries method-specific facts (kept representative, matched benchmark item, span).
    """

    doc_id: str
    source: str
    stage: str
    filter: str
    reason: str
    score: float | None = None
    detail: dict[str, Any] | None = None
    uri: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "stage": self.stage,
            "filter": self.filter,
            "reason": self.reason,
            "score": self.score,
            "detail": self.detail,
            "uri": self.uri,
        }


@dataclass(slots=True, frozen=True)
class Skipped:
    """A record left out by design, not for damage (a WARC response that is not an HTML page): counted by
    reason in the stats, and neither read as a document nor quarantined."""

    reason: str


@dataclass(slots=True, frozen=True)
class Quarantine:
    """A record that could not be read into a document: the file, its line or byte offset, and why."""

    source: str
    uri: str
    reason: str
    line: int | None = None
    offset: int | None = None
    excerpt: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "uri": self.uri,
            "reason": self.reason,
            "line": self.line,
            "offset": self.offset,
            "excerpt": self.excerpt,
        }
