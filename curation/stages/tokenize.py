"""Phase three, per pool: apply the pool's verdicts (keep only what was judged kept, cut spans, attach dedup
clusters), tokenize the kept documents once, and cache their tokens with a document table. The mixer then samples and orders
these compact tables and copies token ranges into shards, so no text is tokenized twice."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import apache_beam as beam
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from apache_beam.metrics import Metrics

from curation import storage
from curation.batching import BATCH_DOCUMENTS, batched
from curation.digests import CODE_VERSION, digest
from curation.document import Document
from curation.document_files import parse_document, read_document_lines
from curation.engine import SpreadOverWorkers
from curation.errors import AccountingError
from curation.layout import RunLayout
from curation.stages.curate import PoolFile
from curation.stages.verdicts import KEPT, read_pool_verdicts
from mixes.manifest import OutputConfig
from mixes.tokenizer import documents_end_to_end, dtype_for, load_tokenizer

DOC_TABLE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source", pa.string()),
        ("start", pa.int64()),
        ("n_tokens", pa.int64()),
        ("uri", pa.string()),
        ("line", pa.int64()),
        ("offset", pa.int64()),
        ("url", pa.string()),
        ("text_hash", pa.string()),
        ("cluster_size", pa.int64()),
    ]
)


def tokenizer_sha256(path: str) -> str:
    return storage.sha256(path)


class DocumentTokenizer:
    """The manifest's tokenizer with its output policy: special tokens, EOS/BOS, shard dtype."""

    def __init__(self, path: str, output: OutputConfig):
        self._output = output
        self.tokenizer = load_tokenizer(path, output.special_tokens_in_text)
        self.dtype = dtype_for(self.tokenizer.vocab_size, output.dtype)
        self.sha256 = self.tokenizer.sha256

    def encode_documents(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The texts' ids with their markers, end to end as the token cache stores them (little-endian), and
        each text's token count."""
        return documents_end_to_end(
            self.tokenizer.encode_batch(texts), self.tokenizer, self.dtype.newbyteorder("<"), self._output.eos, self._output.bos
        )


@dataclass(frozen=True)
class TokenFile:
    """One pool's kept documents, tokenized: raw tokens, the document table and the curated documents."""

    source: str
    # The input as outputs name it (curation.places).
    input_name: str
    input_ordinal: int
    digest: str
    tokens_uri: str
    table_uri: str
    documents_uri: str
    documents: int
    tokens: int
    dtype: str
    # Kept by every decision but left with no text once spans were cut: recorded, never silently lost.
    emptied: list[str]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenFile:
        return cls(**d)


def tokens_digest(pool: PoolFile, decisions_digest: str, tokenizer_sha256: str, output: OutputConfig) -> str:
    policy = (output.eos, output.bos, output.dtype, output.special_tokens_in_text)
    return digest(CODE_VERSION, pool.digest, decisions_digest, tokenizer_sha256, policy)


def apply_verdict(doc: Document, verdict: dict[str, Any]) -> Iterator[Document]:
    """The document as it enters the mix: nothing unless its verdict is kept; else under its final id (a
    repeated id may have been replaced), with its dedup cluster attached and its cut spans removed."""
    if verdict["verdict"] != KEPT:
        return
    doc.id = verdict["id"]
    cluster = verdict.get("cluster")
    if cluster is not None:
        doc.attributes["dedupe/cluster_id"] = cluster["cluster_id"]
        doc.attributes["dedupe/cluster_size"] = cluster["cluster_size"]
    edit = verdict.get("edit")
    if edit is None:
        yield doc
        return
    from curation.edits import apply_edit

    yield from apply_edit(doc, edit)


def judged_documents(pool: PoolFile, decisions_dir: str) -> Iterator[tuple[Document | None, dict[str, Any]]]:
    """The pool's documents, each with its verdict; a document without one (or a verdict without a document)
    stops the run, since "not judged" must never mean "kept". Only a document judged kept is parsed: the
    others come as None."""
    verdicts = read_pool_verdicts(decisions_dir, pool.digest)
    for position, line in enumerate(read_document_lines(pool.documents_uri)):
        verdict = next(verdicts, None)
        if verdict is None or verdict["i"] != position:
            doc_id = parse_document(line).id
            raise AccountingError(f"tokenize: document {position} ({doc_id!r}) of {pool.input_uri} has no verdict")
        yield (parse_document(line) if verdict["verdict"] == KEPT else None), verdict
    if next(verdicts, None) is not None:
        raise AccountingError(f"tokenize: {pool.input_uri} has more verdicts than documents")


def _append_table_rows(rows: dict[str, list], kept: list[Document], starts: list[int], n_tokens: list[int]) -> None:
    """The document table's rows of a batch, column by column."""
    provenances = [doc.provenance for doc in kept]
    rows["id"] += [doc.id for doc in kept]
    rows["source"] += [doc.source for doc in kept]
    rows["start"] += starts
    rows["n_tokens"] += n_tokens
    rows["uri"] += [prov.uri if prov else None for prov in provenances]
    rows["line"] += [prov.line if prov else None for prov in provenances]
    rows["offset"] += [prov.offset if prov else None for prov in provenances]
    rows["url"] += [doc.metadata.get("url") for doc in kept]
    rows["text_hash"] += [prov.text_hash if prov else None for prov in provenances]
    rows["cluster_size"] += [int(doc.attributes.get("dedupe/cluster_size", 1)) for doc in kept]


def tokenize_pool(
    pool: PoolFile,
    ordinal: int,
    decisions_dir: str,
    decisions_digest: str,
    tokenizer,
    output: OutputConfig,
    layout: RunLayout,
) -> TokenFile:
    file_digest = tokens_digest(pool, decisions_digest, tokenizer.sha256, output)
    prefix = layout.tokens_prefix(pool.source, file_digest)
    meta_uri = prefix + ".meta.json"
    if storage.exists(meta_uri):
        with storage.open_binary(meta_uri) as f:
            return TokenFile.from_dict(orjson.loads(f.read()))
    dtype = np.dtype(tokenizer.dtype).newbyteorder("<")
    rows: dict[str, list] = {name: [] for name in DOC_TABLE_SCHEMA.names}
    position = 0
    emptied: list[str] = []
    with storage.atomic_write(prefix + ".tokens") as tokens_out, storage.atomic_write(prefix + ".docs.jsonl.zst") as raw_docs:
        with zstandard.ZstdCompressor(level=3).stream_writer(raw_docs, closefd=False) as docs_out:
            for batch in batched(judged_documents(pool, decisions_dir), BATCH_DOCUMENTS):
                kept = []
                for doc, verdict in batch:
                    if doc is None:
                        continue
                    survivors = list(apply_verdict(doc, verdict))
                    if not survivors:
                        emptied.append(verdict["id"])
                    kept.extend(survivors)
                if not kept:
                    continue
                tokens, lengths = tokenizer.encode_documents([d.text for d in kept])
                tokens_out.write(tokens.tobytes())
                ends = np.cumsum(lengths) + position
                _append_table_rows(rows, kept, (ends - lengths).tolist(), lengths.tolist())
                position = int(ends[-1])
                docs_out.write(b"".join(orjson.dumps(d.to_dict()) + b"\n" for d in kept))
    with storage.atomic_write(prefix + ".table.parquet") as f:
        pq.write_table(pa.table(rows, schema=DOC_TABLE_SCHEMA), f)
    token_file = TokenFile(
        source=pool.source,
        input_name=pool.input_name,
        input_ordinal=ordinal,
        digest=file_digest,
        tokens_uri=prefix + ".tokens",
        table_uri=prefix + ".table.parquet",
        documents_uri=prefix + ".docs.jsonl.zst",
        documents=len(rows["id"]),
        tokens=position,
        dtype=dtype.name,
        emptied=emptied,
    )
    with storage.atomic_write(meta_uri) as f:
        f.write(orjson.dumps(token_file.to_dict(), option=orjson.OPT_INDENT_2))
    return token_file


class _TokenizePoolFn(beam.DoFn):
    def __init__(self, decisions_dir: str, decisions_digest: str, output: OutputConfig, tokenizer_path: str, layout: RunLayout):
        self._decisions_dir = decisions_dir
        self._decisions_digest = decisions_digest
        self._output = output
        self._tokenizer_path = tokenizer_path
        self._layout = layout
        self._docs = Metrics.counter("tokenize", "documents_tokenized")
        self._tokens = Metrics.counter("tokenize", "tokens")

    def setup(self):
        self._tokenizer = DocumentTokenizer(self._tokenizer_path, self._output)

    def process(self, element: tuple[int, PoolFile]):
        ordinal, pool = element
        token_file = tokenize_pool(
            pool, ordinal, self._decisions_dir, self._decisions_digest, self._tokenizer, self._output, self._layout
        )
        self._docs.inc(token_file.documents)
        self._tokens.inc(token_file.tokens)
        yield token_file


class TokenizePools(beam.PTransform):
    """(input ordinal, PoolFile) -> TokenFile, one per pool, in parallel."""

    def __init__(self, decisions_dir, decisions_digest, output, tokenizer_path, layout):
        super().__init__()
        self._fn = _TokenizePoolFn(decisions_dir, decisions_digest, output, tokenizer_path, layout)

    def expand(self, pools):
        return pools | "SpreadPools" >> SpreadOverWorkers() | "ApplyDecisionsAndTokenize" >> beam.ParDo(self._fn)
