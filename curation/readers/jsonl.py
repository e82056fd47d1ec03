"""Streaming JSONL reader (Dolma documents, one JSON object a line; plain, .gz, .zst, .bz2, .xz).

Lines are read with a length cap, so an oversized line is skipped in chunks instead of being held whole.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

import orjson

from curation import storage
from curation.document import Document, Quarantine
from curation.readers.records import document_from_record, reject, unreadable_reason
from mixes.manifest import SourceConfig

# JSON unicode escapes (backslash-u and four hex digits) can make a line several times longer than the text it carries.
_JSON_ESCAPE_ALLOWANCE = 4
_SKIP_CHUNK_BYTES = 1024 * 1024


class _LineStream:
    """Lines of a byte stream with their 1-based number and byte offset in the decompressed stream."""

    def __init__(self, stream: BinaryIO, max_line_bytes: int):
        self._stream = stream
        self._max_line_bytes = max_line_bytes
        self.line_number = 0
        # Where the last line returned starts, and how far reading has come.
        self.line_offset = 0
        self.offset = 0

    def next_line(self) -> bytes | None:
        """The next line that is not blank, b"" at the end, or None for a line longer than the cap (skipped)."""
        self._skip_blank_lines()
        self.line_offset = self.offset
        raw = self._stream.readline(self._max_line_bytes + 1)
        if not raw:
            return b""
        self.line_number += 1
        self.offset += len(raw)
        if len(raw) <= self._max_line_bytes:
            return raw
        while not raw.endswith(b"\n"):
            raw = self._stream.readline(_SKIP_CHUNK_BYTES)
            if not raw:
                break
            self.offset += len(raw)
        return None

    def _skip_blank_lines(self) -> None:
        """Skips blank lines a buffer at a time, still counting them: a gibibyte of newlines read one line
        per Python iteration costs minutes of CPU and yields nothing."""
        while buffered := self._stream.peek(1):
            blank_bytes = len(buffered) - len(buffered.lstrip())
            # Whitespace that leads into a record stays with it, so only whole blank lines are skipped.
            skipped = buffered.rfind(b"\n", 0, blank_bytes) + 1
            if skipped == 0:
                return
            self.line_number += buffered.count(b"\n", 0, skipped)
            self.offset += skipped
            self._stream.read(skipped)
            if skipped < len(buffered):
                return


def read_jsonl(
    source: SourceConfig, uri: str, digest: storage.ReadDigest | None, name: str
) -> Iterator[Document | Quarantine]:
    max_line_bytes = _JSON_ESCAPE_ALLOWANCE * source.max_document_bytes + 64 * 1024
    with storage.open_decompressed(uri, digest) as stream:
        lines = _LineStream(stream, max_line_bytes)
        while True:
            try:
                raw = lines.next_line()
            except storage.SkippedCorruptFrame as exc:
                # Reading goes on at the next intact frame. How many lines the lost frame held is unknown, so
                # the row names no line, and lines after it are numbered as read.
                yield reject(source, name, "corrupt_compression", offset=lines.offset, detail=str(exc))
                continue
            except storage.DECOMPRESSION_ERRORS as exc:
                reason = unreadable_reason(exc, "unreadable_file")
                yield reject(
                    source, name, reason, line=lines.line_number + 1, offset=lines.offset, detail=str(exc)
                )
                return
            if raw == b"":
                return
            if raw is None:
                yield reject(
                    source,
                    name,
                    "document_too_large",
                    line=lines.line_number,
                    offset=lines.line_offset,
                    detail=f"line of {lines.offset - lines.line_offset} bytes",
                )
                continue
            if raw.isspace():
                continue
            yield _parse_line(source, name, raw, lines.line_number, lines.line_offset)


def _parse_line(source: SourceConfig, uri: str, raw: bytes, line: int, offset: int) -> Document | Quarantine:
    try:
        record = orjson.loads(raw)
    except orjson.JSONDecodeError:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return reject(source, uri, "invalid_utf8", line=line, offset=offset, excerpt=_own_bytes(raw))
        return reject(source, uri, "invalid_json", line=line, offset=offset, excerpt=_own_bytes(raw))
    if not isinstance(record, dict):
        return reject(source, uri, "not_an_object", line=line, offset=offset, excerpt=_own_bytes(raw))
    return document_from_record(source, uri, record, line=line, offset=offset)


def _own_bytes(raw: bytes) -> bytes:
    # A bad line's excerpt leaves out its line break, so its digest matches the line as an editor shows it.
    return raw.rstrip(b"\r\n")
