"""The compact per-document record that every dedup shuffle carries instead of the document.

A sketch holds ids, the keep-rule key, digests of the normalized text and URL, the MinHash band keys
(and signature, for scores), and paragraph digests with spans: a few hundred bytes per document.
"""

from __future__ import annotations

from typing import NamedTuple

import xxhash

from curation.document import Document, text_hash
from filters.dedupe.config import DedupeConfig
from filters.dedupe.keep_rule import KeepKey, keep_key
from filters.dedupe.minhash import LshScheme, MinHasher, distinct_shingle_bytes
from filters.dedupe.normalize import key_digest, normalize_text, normalize_url
from filters.dedupe.paragraphs import Paragraph, paragraphs


class DocSketch(NamedTuple):
    keep: KeepKey
    # Graph node for connected components and shuffle routing: 63-bit digest of (source, doc id), so
    # Beam's coder writes it as a varint instead of pickling an integer beyond int64.
    node: int
    text_digest: bytes
    url_digest: bytes | None
    # Arrays travel as raw bytes: a pickled numpy array costs ~150 bytes of header per field.
    # The signature is kept only to estimate the Jaccard score when shingles are not kept.
    signature: bytes | None
    band_keys: bytes | None
    # Sorted unique uint32 shingle hashes, only when candidate pairs are verified by exact Jaccard.
    shingles: bytes | None
    paragraphs: list[Paragraph]
    # How many input documents this one stands for once its duplicates are removed.
    represents: int = 1

    @property
    def source(self) -> str:
        return self.keep.source

    @property
    def doc_id(self) -> str:
        return self.keep.doc_id

    @property
    def content_hash(self) -> str:
        return self.keep.content_hash


def node_id(source: str, doc_id: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{source}\x00{doc_id}".encode("utf-8", "surrogatepass")) >> 1


def sketch_batch(docs: list[Document], config: DedupeConfig, hasher: MinHasher | None) -> list[DocSketch]:
    """Sketches for a batch of documents; MinHash signatures are computed for the batch at once."""
    normalized = [normalize_text(d.text) for d in docs]
    signatures = band_keys = distinct_shingles = None
    keep_shingles = config.minhash is not None and config.minhash.verify_jaccard is not None
    if hasher is not None:
        shingle_sets = hasher.batch_shingles(normalized)
        signatures = hasher.signatures(shingle_sets)
        band_keys = hasher.band_keys(signatures)
        distinct_shingles = distinct_shingle_bytes(shingle_sets) if keep_shingles else None
    out = []
    for i, doc in enumerate(docs):
        has_words = bool(normalized[i])
        signed = hasher is not None and has_words
        url = doc.metadata.get("url")
        out.append(
            DocSketch(
                keep=keep_key(doc.source, doc.id, text_hash(doc.text), config.priority),
                node=node_id(doc.source, doc.id),
                # Texts without words (symbols only, empty) are compared raw rather than all as one.
                text_digest=key_digest(normalized[i] if has_words else doc.text),
                url_digest=key_digest(normalize_url(url)) if url else None,
                signature=signatures[i].tobytes() if signed and not keep_shingles else None,
                band_keys=band_keys[i].tobytes() if signed else None,
                shingles=distinct_shingles[i] if signed and keep_shingles else None,
                paragraphs=paragraphs(doc.text, config.paragraph.min_paragraph_chars)
                if config.paragraph
                else [],
            )
        )
    return out


def make_hasher(config: DedupeConfig) -> MinHasher | None:
    return MinHasher(LshScheme.from_config(config.minhash)) if config.minhash is not None else None
