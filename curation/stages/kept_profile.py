"""What the dataset card shows of each source's kept documents, measured on the workers that count them
(curation/stages/ledger.py): document lengths in characters and in tokens as power-of-two histograms, and
the PII that masking filters replaced in them. A decontaminated document's pieces count as one document."""

from __future__ import annotations

import collections
import itertools
from collections.abc import Iterable
from typing import Any

import pyarrow.parquet as pq

from curation import storage
from curation.document import base_id
from curation.writers import read_documents

# Filters named so mask PII and record per kind how many spans they replaced (filters/pii.py).
PII_FILTER_PREFIX = "pii_mask_"
PII_KINDS = ("email_addresses", "ip_addresses", "phone_numbers")


def length_bin(length: int) -> int:
    """The lower edge of the power-of-two bin holding `length` (0 for empty): lengths span five orders of
    magnitude, so equal-width bins would put nearly every document in the first."""
    return 1 << (length.bit_length() - 1) if length > 0 else 0


def profile_token_file(source: str, table_uri: str, documents_uri: str) -> dict[str, Any]:
    """One pool's kept documents: how many, their length bins and the PII masked in them."""
    with storage.open_seekable(table_uri) as f:
        table = pq.read_table(f, columns=["id", "n_tokens"]).to_pydict()
    tokens: collections.Counter = collections.Counter()
    # A document's pieces are written one after another, so grouping neighbours joins them.
    rows = zip(table["id"], table["n_tokens"])
    for _, pieces in itertools.groupby(rows, key=lambda row: base_id(row[0])):
        tokens[length_bin(sum(n for _, n in pieces))] += 1
    characters: collections.Counter = collections.Counter()
    pii: collections.Counter = collections.Counter()
    for _, pieces in itertools.groupby(read_documents(documents_uri), key=lambda doc: base_id(doc["id"])):
        pieces = list(pieces)
        characters[length_bin(sum(len(d["text"]) for d in pieces))] += 1
        # Pieces carry their document's attributes, so the first one speaks for the document.
        masked = {
            key: value
            for key, value in pieces[0].get("attributes", {}).items()
            if key.startswith(PII_FILTER_PREFIX) and key.rsplit("/", 1)[-1] in PII_KINDS
        }
        if masked:
            pii.update({key: int(value) for key, value in masked.items()})
            pii["documents_masked"] += any(masked.values())
    return {
        "source": source,
        "kept_documents": sum(tokens.values()),
        "token_lengths": tokens,
        "character_lengths": characters,
        "pii_masked": pii,
    }


def merge_profiles(profiles: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source, the sum of its pools' profiles; histograms as [lower edge, documents] pairs in numeric
    order (stats.json sorts mapping keys as text, which would put 1024 before 2)."""
    merged: dict[str, dict[str, Any]] = {}
    for p in profiles:
        m = merged.setdefault(
            p["source"],
            {"kept_documents": 0, "token_lengths": collections.Counter(), "character_lengths": collections.Counter(), "pii_masked": collections.Counter()},
        )
        m["kept_documents"] += p["kept_documents"]
        for key in ("token_lengths", "character_lengths", "pii_masked"):
            m[key].update({k if key == "pii_masked" else int(k): v for k, v in p[key].items()})
    return {
        source: {
            "kept_documents": m["kept_documents"],
            "length_histograms": {
                "characters": sorted(m["character_lengths"].items()),
                "tokens": sorted(m["token_lengths"].items()),
            },
            "pii_masked": dict(sorted(m["pii_masked"].items())),
        }
        for source, m in sorted(merged.items())
    }
