"""Streaming readers from source files (JSONL, Parquet, WARC, WET) to Documents or Quarantine rows,
chosen by the source's `format` or, for "auto", by the file extension."""

from __future__ import annotations

from collections.abc import Iterator

from curation import storage
from curation.document import Document, Quarantine, Skipped
from curation.errors import InputError
from curation.readers.extract import identity
from curation.readers.jsonl import read_jsonl
from curation.readers.parquet import read_parquet
from curation.readers.records import reject
from curation.readers.warc import read_warc, read_wet
from mixes.manifest import SourceConfig

_READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "warc": read_warc, "wet": read_wet}
_COMPRESSION_SUFFIXES = (".gz", ".zst", ".bz2", ".xz", ".lz4")
_FORMAT_BY_SUFFIX = (
    (".warc.wet", "wet"),
    (".wet", "wet"),
    (".warc", "warc"),
    (".jsonl", "jsonl"),
    (".json", "jsonl"),
    (".ndjson", "jsonl"),
    (".parquet", "parquet"),
)


def detect_format(uri: str) -> str:
    name = uri.lower()
    for suffix in _COMPRESSION_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    for suffix, fmt in _FORMAT_BY_SUFFIX:
        if name.endswith(suffix):
            return fmt
    raise InputError(f"{uri}: cannot tell the format from the extension; set the source's format")


def html_extraction(source: SourceConfig, uri: str) -> dict[str, object] | None:
    """The extractor the file at `uri` is read with (its name, function and library versions), if it is a
    WARC whose HTML pages become text; None otherwise."""
    fmt = detect_format(uri) if source.format == "auto" else source.format
    return identity(source.extractor) if fmt == "warc" else None


def read_source_file(
    source: SourceConfig, uri: str, digest: storage.ReadDigest | None = None, name: str | None = None
) -> Iterator[Document | Quarantine | Skipped]:
    """Documents, Quarantine rows and Skipped records of one input file, streamed; an empty file yields
    nothing. A `digest` hashes the file's bytes as they are read. What is yielded names the file `name`
    (as outputs record it: curation.places), `uri` by default; ids derived from a position are made from it."""
    fmt = detect_format(uri) if source.format == "auto" else source.format
    name = uri if name is None else name
    return _unless_unreadable(source, name, _READERS[fmt](source, uri, digest, name))


def _unless_unreadable(
    source: SourceConfig, uri: str, records: Iterator[Document | Quarantine | Skipped]
) -> Iterator[Document | Quarantine | Skipped]:
    """A file that exists but cannot be opened is one quarantine row, so the rest of the source is read."""
    try:
        yield from records
    except storage.UnreadableFile as exc:
        yield reject(source, uri, "unreadable_file", offset=0, detail=str(exc))
