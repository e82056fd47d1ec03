"""Dolma's per-shard metadata file `part-NNNNN.csv.gz`, which OLMo-core reads beside a token file (its
`iter_document_indices`) to find document boundaries without scanning for EOS, as it must for remote shards:
one headerless CSV row per document, `start,end,id,src,loc`, as Dolma's tokenizer writes them. Gzipped with
no name and mtime 0, so the same documents give the same bytes."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Sequence


def metadata_bytes(
    starts: Sequence[int],
    ends: Sequence[int],
    doc_ids: Sequence[str],
    uris: Sequence[str],
    locations: Sequence[int | None],
) -> bytes:
    """`loc` is the document's line in its input (its byte offset for WARC records), empty when unknown."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    # The csv module writes None as an empty field.
    writer.writerows(zip(starts, ends, doc_ids, uris, locations, strict=True))
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0) as f:
        f.write(text.getvalue().encode())
    return compressed.getvalue()
