"""Streaming Parquet reader: record batches (pyarrow iter_batches), one Document per row.

Reads the columns this project's writer uses (metadata, attributes as JSON strings) back into dicts, so
written documents round-trip.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from curation import storage
from curation.document import Document, Quarantine
from curation.readers.records import document_from_record, reject
from mixes.manifest import SourceConfig

_ROWS_PER_BATCH = 256
_JSON_COLUMNS = ("metadata", "attributes")


def read_parquet(
    source: SourceConfig, uri: str, digest: storage.ReadDigest | None, name: str
) -> Iterator[Document | Quarantine]:
    with storage.open_seekable(uri, digest) as f:
        try:
            parquet_file = pq.ParquetFile(f)
        except (pa.ArrowException, OSError) as exc:
            yield reject(source, name, "corrupt_parquet", line=1, detail=str(exc))
            return
        names = parquet_file.schema_arrow.names
        if source.text_field not in names:
            yield reject(
                source, name, "missing_text", line=1, detail=f"no column {source.text_field!r} in {names}"
            )
            return
        batches = parquet_file.iter_batches(
            batch_size=_ROWS_PER_BATCH, columns=_columns_to_read(source, names)
        )
        row_number = 0
        while True:
            try:
                batch = next(batches, None)
            except (pa.ArrowException, OSError) as exc:
                yield reject(source, name, "corrupt_parquet", line=row_number + 1, detail=str(exc))
                return
            if batch is None:
                return
            for row in batch.to_pylist():
                row_number += 1
                yield _row_to_document(source, name, _timestamps_as_text(row), row_number)


def _columns_to_read(source: SourceConfig, names: list[str]) -> list[str]:
    if source.metadata_fields is None:
        return names
    wanted = {source.text_field, source.id_field, "added", "created", "url", *_JSON_COLUMNS}
    wanted.update(source.metadata_fields)
    if source.url_field is not None:
        wanted.add(source.url_field.split(".")[0])
    return [n for n in names if n in wanted]


def _timestamps_as_text(value: Any) -> Any:
    """Timestamps as ISO text, so a row reads the same whether pyarrow hands them over as datetimes or, when
    pandas is installed, as pandas Timestamps (which JSON writers refuse)."""
    if isinstance(value, dict):
        return {key: _timestamps_as_text(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_timestamps_as_text(item) for item in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


def _row_to_document(
    source: SourceConfig, uri: str, row: dict[str, Any], row_number: int
) -> Document | Quarantine:
    for name in _JSON_COLUMNS:
        if isinstance(row.get(name), str):
            try:
                row[name] = orjson.loads(row[name])
            except orjson.JSONDecodeError:
                return reject(
                    source, uri, "invalid_json", line=row_number, detail=f"column {name}", excerpt=row[name]
                )
    return document_from_record(source, uri, row, line=row_number)
