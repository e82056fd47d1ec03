"""Phase one, per input file: read, score with the source's filter chain, and write a content-addressed
pool of scored documents plus its quarantine records. A file whose pool is already complete is skipped,
which is how a killed run resumes."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Iterator

import apache_beam as beam
import orjson
import zstandard
from apache_beam.metrics import Metrics

from curation import storage
from curation.batching import BATCH_DOCUMENTS, batched
from curation.chain import Chain, scoring_identity
from curation.digests import CODE_VERSION, digest
from curation.document import Document, Quarantine, Skipped
from curation.document_files import ZSTD_LEVEL, encode, read_documents
from curation.engine import SpreadOverWorkers
from curation.layout import RunLayout
from curation.readers import html_extraction, read_source_file
from mixes.manifest import SourceConfig

POOL_SUFFIX = ".pool.jsonl.zst"


@dataclass(frozen=True)
class PoolFile:
    """A finished pool: where its documents are and what reading the input cost."""

    source: str
    input_uri: str
    digest: str
    documents_uri: str
    read: int
    quarantined: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    # Records left out by design (not read, so outside read = kept + rejected + quarantined), by reason.
    skipped_reasons: dict[str, int] = field(default_factory=dict)
    # UTF-8 bytes of the documents' text: an upper bound on their tokens for byte-level BPE tokenizers.
    text_bytes: int = 0
    # The input as lock.json records it (uri, size, sha256; on S3 the ETag), hashed while it was read so the
    # lock reads no input again; None for an input quarantined as unreadable.
    input_file: dict[str, Any] | None = None
    # The input as outputs name it: relative to the manifest's folder (curation.places).
    input_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "input_uri": self.input_uri,
            "digest": self.digest,
            "documents_uri": self.documents_uri,
            "read": self.read,
            "quarantined": self.quarantined,
            "quarantine_reasons": self.quarantine_reasons,
            "skipped_reasons": self.skipped_reasons,
            "text_bytes": self.text_bytes,
            "input_file": self.input_file,
            "input_name": self.input_name,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PoolFile:
        return cls(**d)


def input_identity(uri: str) -> dict[str, Any]:
    """What identifies an input's content cheaply, for resuming: size plus ETag (S3) or modification time
    (local). Final outputs are never named by it, so copies of the same inputs give the same bytes."""
    st = storage.stat(uri)
    mtime_ns = None if storage.is_s3(uri) else os.stat(uri).st_mtime_ns
    return {"uri": uri, "size": st.size, "etag": st.etag, "mtime_ns": mtime_ns}


def pool_digest(source: SourceConfig, uri: str, name: str) -> str:
    """Filters count by their scoring identity; paths and follow_symlinks choose files, not how one is read.
    The input's recorded `name` is in the pool (provenance, derived ids), so manifests that name an input
    alike (stage one and stage two, in sibling folders) share its pool. The card's origin, licence and
    languages describe the data without changing how it is read."""
    not_reading = ("filters", "paths", "name", "follow_symlinks", "origin", "license", "languages")
    reader = {k: v for k, v in source.__dict__.items() if k not in not_reading}
    # A WARC's text is what its extractor made of it: a new extractor version or function is a new pool.
    if (extraction := html_extraction(source, uri)) is not None:
        reader["extraction"] = extraction
    return digest(CODE_VERSION, source.name, input_identity(uri), name, reader, scoring_identity(source.filters))


def pool_meta_uri(layout: RunLayout, source: str, file_digest: str) -> str:
    return layout.pool_prefix(source, file_digest) + ".meta.json"


def read_pool_meta(layout: RunLayout, source: str, file_digest: str) -> PoolFile | None:
    meta = pool_meta_uri(layout, source, file_digest)
    if not storage.exists(meta):
        return None
    with storage.open_binary(meta) as f:
        return PoolFile.from_dict(orjson.loads(f.read()))


def curate_file(source: SourceConfig, uri: str, name: str, chain: Chain, layout: RunLayout) -> PoolFile:
    """Read one input file at `uri`, named `name` in what it yields, score its documents and write its pool;
    the meta file is written last."""
    file_digest = pool_digest(source, uri, name)
    done = read_pool_meta(layout, source.name, file_digest)
    if done is not None:
        return done
    prefix = layout.pool_prefix(source.name, file_digest)
    documents_uri = prefix + POOL_SUFFIX
    quarantine_uri = prefix + ".quarantine.jsonl"
    read = 0
    text_bytes = 0
    reasons: dict[str, int] = {}
    skipped: dict[str, int] = {}
    digest = storage.ReadDigest()
    with storage.atomic_write(documents_uri) as raw_docs, storage.atomic_write(quarantine_uri) as quarantine_out:
        with zstandard.ZstdCompressor(level=ZSTD_LEVEL).stream_writer(raw_docs, closefd=False) as docs_out:
            for batch in batched(read_source_file(source, uri, digest, name), BATCH_DOCUMENTS):
                docs = [r for r in batch if isinstance(r, Document)]
                for q in (r for r in batch if isinstance(r, Quarantine)):
                    reasons[q.reason] = reasons.get(q.reason, 0) + 1
                    quarantine_out.write(orjson.dumps(q.to_dict()) + b"\n")
                for skip in (r for r in batch if isinstance(r, Skipped)):
                    skipped[skip.reason] = skipped.get(skip.reason, 0) + 1
                read += sum(not isinstance(r, Skipped) for r in batch)
                if docs:
                    chain.score_batch(docs)
                    text_bytes += sum(len(d.text.encode("utf-8", "surrogatepass")) for d in docs)
                    docs_out.write(encode(docs))
    pool = PoolFile(
        source=source.name,
        input_uri=uri,
        digest=file_digest,
        documents_uri=documents_uri,
        read=read,
        quarantined=sum(reasons.values()),
        quarantine_reasons=reasons,
        skipped_reasons=skipped,
        text_bytes=text_bytes,
        input_file=_read_input_file(digest, uri, name),
        input_name=name,
    )
    with storage.atomic_write(pool_meta_uri(layout, source.name, file_digest)) as f:
        f.write(orjson.dumps(pool.to_dict(), option=orjson.OPT_INDENT_2))
    return pool


def _read_input_file(digest: storage.ReadDigest, uri: str, name: str) -> dict[str, Any] | None:
    """The digest of the input just read, reading only what its reader left unread (usually nothing)."""
    try:
        return dict(digest.finish(uri).to_dict(), uri=name)
    except storage.UnreadableFile:
        return None


def read_pool(pool: PoolFile) -> Iterator[Document]:
    return read_documents(pool.documents_uri)


class _CurateFileFn(beam.DoFn):
    def __init__(self, sources: dict[str, SourceConfig], layout: RunLayout):
        self._sources = sources
        self._layout = layout
        self._read = Metrics.counter("curate", "documents_read")
        self._quarantined = Metrics.counter("curate", "documents_quarantined")
        self._files = Metrics.counter("curate", "files_done")

    def setup(self):
        self._chains = {name: Chain.from_specs(s.filters) for name, s in self._sources.items()}
        for chain in self._chains.values():
            chain.setup()

    def process(self, element: tuple[str, str, str]):
        source_name, uri, name = element
        source = self._sources[source_name]
        pool = curate_file(source, uri, name, self._chains[source_name], self._layout)
        self._read.inc(pool.read)
        self._quarantined.inc(pool.quarantined)
        self._files.inc()
        yield pool


class CurateFiles(beam.PTransform):
    """(source name, input URI, its recorded name) -> finished PoolFile records, one per input file, in parallel."""

    def __init__(self, sources: dict[str, SourceConfig], layout: RunLayout):
        super().__init__()
        self._sources = sources
        self._layout = layout

    def expand(self, source_and_uri):
        return (
            source_and_uri
            | "SpreadFiles" >> SpreadOverWorkers()
            | "ReadScoreAndPool" >> beam.ParDo(_CurateFileFn(self._sources, self._layout))
        )
