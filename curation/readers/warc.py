"""WARC and WET readers (Common Crawl layout): HTML `response` records become text through the source's
extractor (curation.readers.extract), run in an isolated child process; WET `conversion` records are text.

Records are framed here, by their headers' Content-Length, and each is parsed by FastWARC on its own. A
record must be followed by the next one or by the end of the file: one that is not has a wrong length (or
lies in damaged bytes), so it is quarantined and reading resynchronises at the next line that starts a
record. Any WARC version FastWARC parses is read, ClueWeb09's WARC/0.18 with its LF-only HTTP headers too.
Compressed archives are decompressed by `storage`, so a truncated or corrupt archive raises instead of
ending quietly; record offsets are offsets in the decompressed stream.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

from fastwarc.warc import WarcRecord, WarcRecordType

from curation import storage
from curation.document import Document, Quarantine, Skipped, stable_id
from curation.readers.extract_isolated import ExtractFailure, isolated
from curation.readers.records import build_document, reject, unreadable_reason
from mixes.manifest import SourceConfig

_HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})
# Room for the HTTP headers above a payload: a record is read whole up to max_document_bytes plus this,
# and of a longer one only this much is read, for its type and HTTP headers.
_HTTP_HEAD_BYTES = 64 * 1024
_MAX_WARC_HEADER_BYTES = 64 * 1024
_READ_CHUNK_BYTES = 1024 * 1024
# Ends a WARC header, and follows every record's block.
_TWO_CRLF = b"\r\n\r\n"
_CONTENT_LENGTH = re.compile(rb"(?im)^content-length:[ \t]*(\d+)")
_RECORD_START = re.compile(rb"WARC/\d")
_NEXT_RECORD_START = re.compile(rb"\nWARC/\d")
_NOT_BLANK = re.compile(rb"[^\r\n]")

RecordToDocument = Callable[[SourceConfig, str, "_Framed", WarcRecord], "Document | Quarantine | Skipped"]


@dataclass(frozen=True)
class _Framed:
    """One record's bytes: its header, and its block whole or, when longer than the cap, its first bytes."""

    offset: int
    header: bytes
    block: bytes
    block_bytes: int

    @property
    def whole(self) -> bool:
        return len(self.block) == self.block_bytes

    def parse(self) -> WarcRecord:
        header = self.header
        if not self.whole:
            # Parsed from its head alone, so the header must declare just that much.
            length = _CONTENT_LENGTH.search(header)
            header = header[: length.start(1)] + str(len(self.block)).encode() + header[length.end(1) :]
        return WarcRecord.from_bytes(header + self.block)


@dataclass(frozen=True)
class _Broken:
    """Bytes that are not a well-formed record, from `offset` to where reading resynchronised."""

    offset: int
    detail: str


class _Framing:
    """Splits a decompressed WARC stream into records. The buffer keeps a record's bytes until it is known to
    be whole, so a record whose length proves wrong can be searched for the next record start."""

    def __init__(self, stream: BinaryIO, max_block_bytes: int):
        self._stream = stream
        self._max_block_bytes = max_block_bytes
        self._data = bytearray()
        self._pos = 0
        self._base = 0  # stream offset of _data[0]
        self.record_offset = 0

    @property
    def offset(self) -> int:
        return self._base + self._pos

    def records(self) -> Iterator[_Framed | _Broken]:
        while True:
            self._drop_consumed()
            if not self._skip_blank_bytes():
                return
            start = self._pos
            self.record_offset = self.offset
            header_end = self._header_end()
            length = _CONTENT_LENGTH.search(self._data, start, header_end) if header_end else None
            if length is None:
                yield _Broken(self.record_offset, "no WARC record header with a Content-Length starts here")
                self._resync(self.record_offset + 1)
                continue
            header = bytes(self._data[start:header_end])
            block_bytes = int(length.group(1))
            self._pos = header_end
            block_offset = self.offset
            if not self._block_fits_the_input(block_bytes):
                yield _Broken(
                    self.record_offset, f"its Content-Length {block_bytes} runs past the end of the file"
                )
                self._resync(block_offset)
                continue
            block = self._read_block(block_bytes)
            if not self._at_record_boundary():
                yield _Broken(
                    self.record_offset,
                    f"its Content-Length {block_bytes} does not end where the next record or the file does",
                )
                self._resync(block_offset)
                continue
            yield _Framed(self.record_offset, header, block, block_bytes)

    def _fill(self, end: int) -> bool:
        """Reads on until the buffer holds `end` bytes; False if the stream ends first."""
        while len(self._data) < end:
            chunk = self._stream.read(max(_READ_CHUNK_BYTES, end - len(self._data)))
            if not chunk:
                return False
            self._data += chunk
        return True

    def _drop_consumed(self) -> None:
        del self._data[: self._pos]
        self._base += self._pos
        self._pos = 0

    def _skip_blank_bytes(self) -> bool:
        """Skips line breaks between records; False at the end of the stream."""
        while self._fill(self._pos + 1):
            found = _NOT_BLANK.search(self._data, self._pos)
            if found:
                self._pos = found.start()
                return True
            self._pos = len(self._data)
            self._drop_consumed()
        return False

    def _header_end(self) -> int | None:
        """Where the header starting here ends, or None if no record header starts here."""
        complete = self._fill(self._pos + _MAX_WARC_HEADER_BYTES)
        if not _RECORD_START.match(self._data, self._pos):
            return None
        end = self._data.find(_TWO_CRLF, self._pos, self._pos + _MAX_WARC_HEADER_BYTES)
        if end < 0 and not complete:
            raise EOFError("WARC input ended inside a record header")
        return end + len(_TWO_CRLF) if end >= 0 else None

    def _block_fits_the_input(self, block_bytes: int) -> bool:
        """False if the input ends inside a block that a later record start shows to be too long; an input that
        ends inside a block with no record after it is cut off (EOFError)."""
        if block_bytes > self._max_block_bytes or self._fill(self._pos + block_bytes):
            return True
        if _NEXT_RECORD_START.search(self._data, self._pos):
            return False
        raise EOFError("WARC input ended inside a record")

    def _read_block(self, block_bytes: int) -> bytes:
        """The block whole, or its head when it is longer than the cap (the rest is skipped unread)."""
        kept = block_bytes if block_bytes <= self._max_block_bytes else _HTTP_HEAD_BYTES
        self._fill(self._pos + kept)
        block = bytes(self._data[self._pos : self._pos + kept])
        self._skip(block_bytes)
        return block

    def _skip(self, size: int) -> None:
        while size > 0:
            if self._pos == len(self._data):
                self._drop_consumed()
                if not self._fill(1):
                    raise EOFError("WARC input ended inside a record")
            step = min(size, len(self._data) - self._pos)
            self._pos += step
            size -= step

    def _at_record_boundary(self) -> bool:
        """The block just read is followed by its trailer (damage after that is the next record's), or by
        line breaks and then the next record or the end."""
        self._fill(self._pos + len(_TWO_CRLF))
        if self._data.startswith(_TWO_CRLF, self._pos):
            return True
        if not self._skip_blank_bytes():
            return True
        self._fill(self._pos + len(b"WARC/"))
        return self._data.startswith(b"WARC/", self._pos)

    def _resync(self, search_from: int) -> None:
        """Goes on at the next line that starts a record, searching from stream offset `search_from` on, or
        from the first byte still buffered (a block too long to keep is searched only after its end)."""
        self._pos = max(0, search_from - self._base)
        while True:
            found = _NEXT_RECORD_START.search(self._data, self._pos)
            if found:
                self._pos = found.start() + 1
                return
            # A record start may straddle the end of what is read so far.
            self._pos = max(self._pos, len(self._data) - len(b"\nWARC/1"))
            self._drop_consumed()
            if not self._fill(len(self._data) + 1):
                self._pos = len(self._data)
                return


def read_warc(
    source: SourceConfig, uri: str, digest: storage.ReadDigest | None, name: str
) -> Iterator[Document | Quarantine | Skipped]:
    extractor = isolated(source.extractor)

    def response_to_document(
        source: SourceConfig, uri: str, framed: _Framed, record: WarcRecord
    ) -> Document | Quarantine | Skipped:
        # Only successful HTML pages are documents; redirects, errors and other media are not text sources.
        if record.http_headers is None:
            return Skipped("not_http")
        if record.http_headers.status_code != 200:
            return Skipped("http_status_not_200")
        if (record.http_content_type or "").lower() not in _HTML_CONTENT_TYPES:
            return Skipped("not_html")
        if not framed.whole or record.content_length > source.max_document_bytes:
            return _too_large(source, uri, framed)
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        body = record.reader.read()
        html = bytes_to_str(body, record.http_charset or detect_encoding(body))
        text = extractor.extract(html)
        if isinstance(text, ExtractFailure):
            return reject(source, uri, text.reason, offset=framed.offset, detail=text.detail)
        return _record_document(source, uri, framed.offset, record, text)

    return _read_archive(source, uri, WarcRecordType.response, response_to_document, digest, name)


def _too_large(source: SourceConfig, uri: str, framed: _Framed) -> Quarantine:
    """The record is judged by its declared length: a block over the cap is never read into memory."""
    return reject(
        source, uri, "document_too_large", offset=framed.offset, detail=f"{framed.block_bytes} bytes"
    )


def read_wet(
    source: SourceConfig, uri: str, digest: storage.ReadDigest | None, name: str
) -> Iterator[Document | Quarantine | Skipped]:
    def conversion_to_document(
        source: SourceConfig, uri: str, framed: _Framed, record: WarcRecord
    ) -> Document | Quarantine:
        if not framed.whole or record.content_length > source.max_document_bytes:
            return _too_large(source, uri, framed)
        body = record.reader.read()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return reject(source, uri, "invalid_utf8", offset=framed.offset, excerpt=body)
        return _record_document(source, uri, framed.offset, record, text)

    return _read_archive(source, uri, WarcRecordType.conversion, conversion_to_document, digest, name)


def _read_archive(
    source: SourceConfig,
    uri: str,
    record_type: WarcRecordType,
    to_document: RecordToDocument,
    digest: storage.ReadDigest | None,
    name: str,
) -> Iterator[Document | Quarantine | Skipped]:
    """The records of the archive at `uri`, named `name` in what they yield."""
    with storage.open_decompressed(uri, digest) as stream:
        framing = _Framing(stream, source.max_document_bytes + _HTTP_HEAD_BYTES)
        records = framing.records()
        while True:
            try:
                framed = next(records, None)
            except storage.DECOMPRESSION_ERRORS as exc:
                reason = unreadable_reason(exc, "corrupt_warc")
                yield reject(source, name, reason, offset=framing.record_offset, detail=str(exc))
                return
            if framed is None:
                return
            if isinstance(framed, _Broken):
                yield reject(source, name, "corrupt_warc", offset=framed.offset, detail=framed.detail)
                continue
            item = _record_item(source, name, framed, record_type, to_document)
            if item is not None:
                yield item


def _record_item(
    source: SourceConfig,
    uri: str,
    framed: _Framed,
    record_type: WarcRecordType,
    to_document: RecordToDocument,
) -> Document | Quarantine | Skipped | None:
    try:
        record = framed.parse()
        if record.record_type != record_type:
            return None
        if record_type == WarcRecordType.response:
            # Content-Encoding is left alone: crawlers store decoded payloads, and a failed decode would lose
            # the record. LF-only HTTP headers (ClueWeb09) are accepted.
            record.parse_http(auto_decode="transfer", quirks_mode=True)
    except OSError as exc:
        return reject(source, uri, "corrupt_warc", offset=framed.offset, detail=str(exc))
    return to_document(source, uri, framed, record)


def _record_document(
    source: SourceConfig, uri: str, offset: int, record: WarcRecord, text: str
) -> Document | Quarantine:
    record_id = (record.record_id or "").strip("<>") or None
    url = (record.headers.get("WARC-Target-URI") or "").strip().strip("<>") or None
    date = record.headers.get("WARC-Date")
    metadata = {"url": url, "warc_record_id": record_id, "warc_date": date}
    refers_to = record.headers.get("WARC-Refers-To")
    if refers_to:
        metadata["warc_refers_to"] = refers_to.strip("<>")
    return build_document(
        source,
        uri,
        text=text,
        doc_id=record_id or stable_id(source.name, uri, offset, source.id_root),
        metadata=metadata,
        line=None,
        offset=offset,
        created=date,
    )
