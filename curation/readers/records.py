"""From raw records to Documents: the field mapping and the checks every reader shares (Dolma's document
shape; bad records become Quarantine rows or, with `on_error: fail`, an InputError naming file and place)."""

from __future__ import annotations

import datetime
import hashlib
import re
import zlib
from typing import Any

import zstandard

from curation.document import Document, Provenance, Quarantine, id_problem, stable_id, text_hash
from curation.errors import InputError
from mixes.manifest import SourceConfig

# Quarantine rows show (or digest) at most this much of a bad record.
_EXCERPT_BYTES = 200
# Record fields that are Document fields, so never copied into `metadata` wholesale.
_DOCUMENT_FIELDS = frozenset(
    {"text", "id", "metadata", "source", "added", "created", "attributes", "provenance"}
)


def place(line: int | None, offset: int | None) -> str:
    """Where a record sits in its file, as error messages and quarantine rows say it."""
    return f"line {line}" if line is not None else f"byte offset {offset}"


def reject(
    source: SourceConfig,
    uri: str,
    reason: str,
    *,
    line: int | None = None,
    offset: int | None = None,
    detail: str = "",
    excerpt: bytes | str = "",
) -> Quarantine:
    """A Quarantine row for a record that cannot become a document; an InputError under `on_error: fail`.

    `detail` is our own words (an error message, a size); `excerpt` is the record's raw input, which the
    row names only by digest unless the source sets `publish_excerpts`, since rows reach the release."""
    # A character is at least one byte, so slicing first spares encoding a huge document whole.
    raw = excerpt[:_EXCERPT_BYTES]
    raw = (raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw)[:_EXCERPT_BYTES]
    detail = detail[:_EXCERPT_BYTES]
    shown = raw.decode("utf-8", "backslashreplace")
    if source.on_error == "fail":
        where = place(line, offset)
        raise InputError(f"{uri}: {where}: {reason}: {_joined(detail, _escaped_controls(shown))}")
    published = shown if source.publish_excerpts or not raw else excerpt_digest(raw)
    return Quarantine(source.name, uri, reason, line, offset, _joined(detail, published))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escaped_controls(text: str) -> str:
    """Text for a terminal: a bad line's escape sequences, NULs and line breaks shown, not obeyed."""
    return _CONTROL.sub(lambda m: {"\r": "\\r", "\n": "\\n", "\t": "\\t"}.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


def excerpt_digest(raw: bytes) -> str:
    """What a quarantine row says of an unpublished excerpt: enough to match it against the input."""
    return f"sha256:{hashlib.sha256(raw).hexdigest()} ({len(raw)} bytes)"


def _joined(detail: str, excerpt: str) -> str:
    return ": ".join(part for part in (detail, excerpt) if part)


def unreadable_reason(exc: BaseException, format_reason: str) -> str:
    """Counter name for a stream that stops being readable: truncated, corrupt compression, or a
    format-level error (`format_reason`, e.g. corrupt_warc)."""
    if isinstance(exc, EOFError):
        return "truncated_file"
    if isinstance(exc, (zlib.error, zstandard.ZstdError)) or type(exc).__name__ in (
        "BadGzipFile",
        "LZMAError",
    ):
        return "corrupt_compression"
    return format_reason


def build_document(
    source: SourceConfig,
    uri: str,
    *,
    text: Any,
    doc_id: Any,
    metadata: dict[str, Any],
    line: int | None,
    offset: int | None,
    added: str | None = None,
    created: str | None = None,
    attributes: dict[str, Any] | None = None,
) -> Document | Quarantine:
    if text is None:
        return reject(
            source, uri, "missing_text", line=line, offset=offset, detail=f"no field {source.text_field!r}"
        )
    if not isinstance(text, str):
        return reject(source, uri, "non_string_text", line=line, offset=offset, excerpt=repr(text))
    if not text.strip():
        return reject(source, uri, "empty_text", line=line, offset=offset, excerpt=repr(text))
    if _utf8_size_exceeds(text, source.max_document_bytes):
        return reject(source, uri, "document_too_large", line=line, offset=offset, excerpt=text)
    problem = id_problem(doc_id)
    if problem is not None:
        if source.ids != "derive":
            return reject(
                source, uri, "invalid_id", line=line, offset=offset, detail=problem, excerpt=repr(doc_id)
            )
        doc_id = stable_id(source.name, uri, line if line is not None else offset, source.id_root)
    return Document(
        id=doc_id,
        text=text,
        source=source.name,
        added=added,
        created=created,
        metadata=metadata,
        attributes=attributes or {},
        provenance=Provenance(uri, line=line, offset=offset, text_hash=text_hash(text)),
    )


def _utf8_size_exceeds(text: str, max_bytes: int) -> bool:
    # UTF-8 takes 1 to 4 bytes a character, so encoding is needed only in the band between.
    if len(text) > max_bytes:
        return True
    if len(text) * 4 <= max_bytes:
        return False
    return len(text.encode("utf-8", "surrogatepass")) > max_bytes


def document_from_record(
    source: SourceConfig, uri: str, record: dict[str, Any], *, line: int | None, offset: int | None = None
) -> Document | Quarantine:
    """A JSON-like record (a JSONL line, a Parquet row) mapped to a Document by the source's field names."""
    raw_id = record.get(source.id_field)
    if raw_id is None:
        doc_id = stable_id(source.name, uri, line if line is not None else offset, source.id_root)
    else:
        doc_id = str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else raw_id
    attributes = record.get("attributes")
    return build_document(
        source,
        uri,
        text=record.get(source.text_field),
        doc_id=doc_id,
        metadata=_metadata(source, record),
        line=line,
        offset=offset,
        added=_as_text(record.get("added")),
        created=_as_text(record.get("created")),
        attributes=attributes if isinstance(attributes, dict) else None,
    )


def _metadata(source: SourceConfig, record: dict[str, Any]) -> dict[str, Any]:
    nested = record.get("metadata")
    metadata = dict(nested) if isinstance(nested, dict) else {}
    if source.metadata_fields is None:
        skipped = _DOCUMENT_FIELDS | {source.text_field, source.id_field}
        metadata.update((k, v) for k, v in record.items() if k not in skipped)
    else:
        metadata.update((k, record[k]) for k in source.metadata_fields if k in record)
    url = _url(source, record, metadata)
    if url is not None:
        metadata["url"] = url
    return metadata


def _url(source: SourceConfig, record: dict[str, Any], metadata: dict[str, Any]) -> Any:
    if source.url_field is not None:
        value: Any = record
        for part in source.url_field.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    return metadata.get("url", record.get("url"))


def _as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return str(value)
