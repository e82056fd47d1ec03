"""WARC and WET readers on FastWARC (Common Crawl layout): HTML `response` records become text through
resiliparse's main-content extraction (or trafilatura via datatrove); WET `conversion` records are text.

Compressed archives are decompressed by `storage` rather than by FastWARC, so a truncated or corrupt
archive raises instead of ending quietly; record offsets are therefore offsets in the decompressed stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from fastwarc.warc import ArchiveIterator, WarcRecord, WarcRecordType

from curation import storage
from curation.document import Document, Quarantine, stable_id
from curation.errors import CurationError
from curation.readers.records import build_document, reject, unreadable_reason
from mixes.manifest import SourceConfig

_HTML_CONTENT_TYPES = frozenset({"text/html", "application/xhtml+xml"})

RecordToDocument = Callable[[SourceConfig, str, WarcRecord], "Document | Quarantine | None"]


def read_warc(source: SourceConfig, uri: str) -> Iterator[Document | Quarantine]:
    extract = html_to_text(source.extractor)

    def response_to_document(
        source: SourceConfig, uri: str, record: WarcRecord
    ) -> Document | Quarantine | None:
        # Only successful HTML pages are documents; redirects, errors and other media are not text sources.
        if record.http_headers.status_code != 200:
            return None
        if (record.http_content_type or "").lower() not in _HTML_CONTENT_TYPES:
            return None
        if record.content_length > source.max_document_bytes:
            return _too_large(source, uri, record)
        from resiliparse.parse.encoding import bytes_to_str, detect_encoding

        body = record.reader.read()
        html = bytes_to_str(body, record.http_charset or detect_encoding(body))
        return _record_document(source, uri, record, extract(html) or "")

    return _read_archive(source, uri, WarcRecordType.response, response_to_document)


def _too_large(source: SourceConfig, uri: str, record: WarcRecord) -> Document | Quarantine:
    """The record is judged by its declared length, before its body is read into memory."""
    return reject(source, uri, "document_too_large", offset=record.stream_pos, excerpt=f"{record.content_length} bytes")


def read_wet(source: SourceConfig, uri: str) -> Iterator[Document | Quarantine]:
    def conversion_to_document(source: SourceConfig, uri: str, record: WarcRecord) -> Document | Quarantine:
        if record.content_length > source.max_document_bytes:
            return _too_large(source, uri, record)
        body = record.reader.read()
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            return reject(source, uri, "invalid_utf8", offset=record.stream_pos, excerpt=body)
        return _record_document(source, uri, record, text)

    return _read_archive(source, uri, WarcRecordType.conversion, conversion_to_document)


def html_to_text(extractor: str) -> Callable[[str], str | None]:
    if extractor == "resiliparse":
        from resiliparse.extract.html2text import extract_plain_text

        return lambda html: extract_plain_text(html, main_content=True)
    try:
        import trafilatura  # noqa: F401
    except ImportError as exc:
        raise CurationError(
            f"extractor 'trafilatura' needs the Python package 'trafilatura' (pip install trafilatura): {exc}"
        ) from None
    from datatrove.pipeline.extractors import Trafilatura

    return Trafilatura(favour_precision=True).extract


def _read_archive(
    source: SourceConfig, uri: str, record_type: WarcRecordType, to_document: RecordToDocument
) -> Iterator[Document | Quarantine]:
    with storage.open_decompressed(uri) as stream:
        # Content-Encoding is left alone: crawlers store decoded payloads, and a failed decode would end the file.
        records = iter(
            ArchiveIterator(stream, parse_http=record_type == WarcRecordType.response, auto_decode="transfer")
        )
        records_seen = 0
        last_offset = 0
        while True:
            try:
                record = next(records, None)
                if record is None:
                    break
                records_seen += 1
                last_offset = record.stream_pos
                item = to_document(source, uri, record) if record.record_type == record_type else None
            except storage.DECOMPRESSION_ERRORS as exc:
                reason = unreadable_reason(exc, "corrupt_warc")
                yield reject(source, uri, reason, offset=last_offset, excerpt=f"after this record: {exc}")
                return
            if item is not None:
                yield item
        # FastWARC skips what it cannot parse as WARC/1.x (e.g. WARC/0.18): bytes but no record is an error.
        if records_seen == 0 and stream.tell() > 0:
            yield reject(source, uri, "no_warc_records", offset=0, excerpt="no WARC/1.0 or 1.1 record found")


def _record_document(source: SourceConfig, uri: str, record: WarcRecord, text: str) -> Document | Quarantine:
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
        doc_id=record_id or stable_id(source.name, uri, record.stream_pos, source.id_root),
        metadata=metadata,
        line=None,
        offset=record.stream_pos,
        created=date,
    )
