"""Documents as zstd JSON lines: the pools curate writes, and the batches a stage sets aside in its scratch
while they wait for a side input. A batch that waits inside a pipeline is held by the runner, and the local
runner runs inside the launcher; set aside, only its file name waits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import orjson
import xxhash
import zstandard

from curation import storage
from curation.document import Document

# Pools and set-aside batches are a cache read once or twice: level 1 writes ~10% faster for ~20% more
# bytes than level 3.
ZSTD_LEVEL = 1


def encode(docs: Iterable[Document]) -> bytes:
    return b"".join(orjson.dumps(d.to_dict()) + b"\n" for d in docs)


def read_documents(uri: str) -> Iterator[Document]:
    return map(parse_document, read_document_lines(uri))


def read_document_lines(uri: str) -> Iterator[bytes]:
    """Each document's JSON line, unparsed, for a reader that needs only some of them."""
    with storage.open_decompressed(uri) as f:
        yield from f


def parse_document(line: bytes) -> Document:
    return Document.from_dict(orjson.loads(line))


def set_aside(batch: list[Document], work_dir: str, kind: str) -> str:
    """`batch` written under `work_dir`, named by its content (a retried bundle rewrites the same file);
    returns its URI for `take_back`."""
    data = encode(batch)
    uri = storage.join(work_dir, kind, f"{xxhash.xxh3_128_hexdigest(data)}.jsonl.zst")
    with storage.atomic_write(uri) as f:
        f.write(zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(data))
    return uri


def take_back(uri: str) -> list[Document]:
    return list(read_documents(uri))
