"""Audit an output: which document holds a given token, and every decision taken about a document.

Built once at the end of a run into `audit/` (curation/stages/audit_index.py): one JSON line per document
(or quarantined record) with its provenance, attributes, ledger rows, dedup cluster and placements, plus sorted 64-bit key arrays (by id,
by input location) and per-shard token-start arrays. A query binary searches the arrays by ranged reads
and reads one line, so it costs the same on a 1M-document output as on a small one, local or on S3 (cf. Dolma's attribute
files and OLMo's "what's in my data" lookups, made offline and exact).
"""

from __future__ import annotations

import bisect
import collections
import io
import os
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import orjson
import xxhash

from curation import storage
from curation.document import base_id
from curation.errors import CurationError
from curation.writers import read_zstd_frame

AUDIT_DIR = "audit"
RECORDS = "records.jsonl"
RECORD_OFFSETS = "records.offsets.npy"
ID_KEYS, ID_ROWS = "ids.keys.npy", "ids.rows.npy"
LOCATION_KEYS, LOCATION_ROWS = "locations.keys.npy", "locations.rows.npy"
SHARD_STARTS, SHARD_ROWS = "starts.npy", "rows.npy"


class AuditError(CurationError):
    """A query the index cannot answer as asked (unknown shard, token past the end, ambiguous id)."""


def id_key(source: str, doc_id: str) -> int:
    return xxhash.xxh3_64_intdigest(f"{source}\x00{base_id(doc_id)}".encode())


def source_free_id_key(doc_id: str) -> int:
    """Key for lookups without --source: ids are unique only within a source, so both keys are indexed."""
    return xxhash.xxh3_64_intdigest(f"\x00{base_id(doc_id)}".encode())


def location_key(uri: str, line: int | None = None, offset: int | None = None) -> int:
    place = f"L{line}" if line is not None else f"B{offset}"
    return xxhash.xxh3_64_intdigest(f"{uri}\x00{place}".encode())


def shard_name(shard: int | str) -> str:
    """`3`, `part-00003`, `part-00003.npy` or a path to any of its files -> `part-00003`."""
    text = os.path.basename(str(shard)).split(".", 1)[0]
    if text.isdigit():
        return f"part-{int(text):05d}"
    return text


# ---------------------------------------------------------------- querying


@dataclass(frozen=True)
class TokenHit:
    """The document holding a token: its record and the placement (shard, start, end, repetition) it is in."""

    record: dict[str, Any]
    placement: dict[str, Any]
    token_offset: int


class StoredArray:
    """A 1-d .npy array of 64-bit integers read by ranges, a page at a time: a binary search over it reads the
    few pages it touches, a handful of small requests on S3 however large the output (rather than fetching
    whole arrays, which grow with the corpus). Pages read are kept, so repeated lookups cost nothing more."""

    # 64 KiB pages: a search of the 2M-key id index of a million documents reads the header and about 8
    # pages, 9 small GETs (measured against moto), where fetching the arrays would move 16 MB per array.
    PAGE_ITEMS = 8192
    _HEADER_BYTES = 4096  # np.save pads its header to a multiple of 64 bytes; a 1-d array's is 128

    def __init__(self, uri: str):
        self.uri = uri
        header = io.BytesIO(storage.read_range(uri, 0, self._HEADER_BYTES))
        version = np.lib.format.read_magic(header)
        read_header = (
            np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        )
        (self._length,), _, self._dtype = read_header(header)
        self._data_offset = header.tell()
        self._pages: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, position: int) -> int:
        if not 0 <= position < self._length:
            raise IndexError(position)
        page, within = divmod(position, self.PAGE_ITEMS)
        if page not in self._pages:
            item_bytes = self._dtype.itemsize
            first = self._data_offset + page * self.PAGE_ITEMS * item_bytes
            data = storage.read_range(self.uri, first, self.PAGE_ITEMS * item_bytes)
            self._pages[page] = np.frombuffer(data[: len(data) - len(data) % item_bytes], dtype=self._dtype)
        return int(self._pages[page][within])


class AuditIndex:
    """Read-only view of `root/audit/`, a local folder or an S3 prefix: sorted arrays searched by ranged
    reads, records read one line at a time."""

    def __init__(self, root: str):
        self.root = root.rstrip("/")
        self.folder = storage.join(self.root, AUDIT_DIR)
        if not storage.exists(storage.join(self.folder, RECORD_OFFSETS)):
            raise AuditError(f"{root}: no audit index; build it with `curation audit {root} --build-index`")
        self._arrays: dict[str, StoredArray] = {}
        self._offsets = self._array(RECORD_OFFSETS)
        self._records_uri = storage.join(self.folder, RECORDS)

    def _array(self, name: str) -> StoredArray:
        if name not in self._arrays:
            self._arrays[name] = StoredArray(storage.join(self.folder, name))
        return self._arrays[name]

    def close(self) -> None:
        self._arrays.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def record(self, row: int) -> dict[str, Any]:
        start, end = self._offsets[row], self._offsets[row + 1]
        return orjson.loads(storage.read_range(self._records_uri, start, end - start))

    def _rows(self, keys_name: str, rows_name: str, key: int) -> list[int]:
        keys = self._array(keys_name)
        lo, hi = bisect.bisect_left(keys, key), bisect.bisect_right(keys, key)
        rows = self._array(rows_name)
        return [rows[i] for i in range(lo, hi)]

    def at_token(self, shard: int | str, token_offset: int) -> TokenHit:
        name = shard_name(shard)
        starts_name = f"shards/{name}.{SHARD_STARTS}"
        if starts_name not in self._arrays and not storage.exists(storage.join(self.folder, starts_name)):
            raise AuditError(f"{self.root}: no shard {name}")
        starts = self._array(starts_name)
        position = bisect.bisect_right(starts, token_offset) - 1
        if token_offset < 0 or position < 0:
            raise AuditError(f"token offset {token_offset} is before the first document of {name}")
        record = self.record(self._array(f"shards/{name}.{SHARD_ROWS}")[position])
        start = starts[position]
        placement = next(p for p in record["placements"] if p["shard"] == name and p["start"] == start)
        if token_offset >= placement["end"]:
            raise AuditError(
                f"token offset {token_offset} is past the end of {name} ({placement['end']} tokens)"
            )
        return TokenHit(record, placement, token_offset)

    def documents(self, doc_id: str, source: str | None = None) -> list[dict[str, Any]]:
        """The records of a document id (one per source holding it unless `source` is given)."""
        key = id_key(source, doc_id) if source is not None else source_free_id_key(doc_id)
        found = [self.record(r) for r in self._rows(ID_KEYS, ID_ROWS, key)]
        return [r for r in found if r["id"] == base_id(doc_id) and (source is None or r["source"] == source)]

    def document(self, doc_id: str, source: str | None = None) -> dict[str, Any]:
        found = self.documents(doc_id, source)
        if not found:
            where = f" in source {source!r}" if source else ""
            raise AuditError(
                f"no document {doc_id!r}{where} in {self.root} (quarantined records have no id: query by --input)"
            )
        if len(found) > 1:
            raise AuditError(
                f"document id {doc_id!r} is in several sources ({', '.join(r['source'] for r in found)}): add --source"
            )
        return found[0]

    def at_input(self, uri: str, line: int | None = None, offset: int | None = None) -> list[dict[str, Any]]:
        """What became of the record read at line (JSONL, Parquet row) or byte offset (WARC) of an input."""
        found = [
            self.record(r) for r in self._rows(LOCATION_KEYS, LOCATION_ROWS, location_key(uri, line, offset))
        ]
        return [
            r
            for r in found
            if r["uri"] == uri and (r["line"] == line if line is not None else r["offset"] == offset)
        ]

    def text(self, record: dict[str, Any], piece_id: str | None = None) -> str | None:
        """The curated text (after every edit) of a kept document or one of its pieces, from documents/."""
        for piece in record.get("pieces", []):
            if piece_id is None or piece["id"] == piece_id:
                uri = storage.join(self.root, piece["document"])
                if "frame" in piece:
                    frame_offset, first_line = piece["frame"]
                    lines = read_zstd_frame(uri, frame_offset).splitlines()
                    return orjson.loads(lines[piece["line"] - first_line])["text"]
                with storage.open_decompressed(uri) as f:
                    for line_number, line in enumerate(f):
                        if line_number == piece["line"]:
                            return orjson.loads(line)["text"]
        return None


# ---------------------------------------------------------------- printing


def _where(record: dict[str, Any]) -> str:
    place = (
        f"line {record['line']}"
        if record.get("line") is not None
        else f"byte offset {record['offset']}"
        if record.get("offset") is not None
        else "position unknown"
    )
    return f"{record.get('uri') or 'input unknown'} ({place})"


def format_token_hit(hit: TokenHit) -> str:
    r, p = hit.record, hit.placement
    lines = [
        f"token {hit.token_offset} of {p['shard']}: document {p['id']} (source {r['source']}, tokens {p['start']}..{p['end']}, repetition {p['repetition']})",
        f"input: {_where(r)}",
    ]
    if r.get("url"):
        lines.append(f"url: {r['url']}")
    if r.get("attributes"):
        lines.append("attributes: " + orjson.dumps(r["attributes"], option=orjson.OPT_SORT_KEYS).decode())
    return "\n".join(lines)


def _decision_line(d: dict[str, Any]) -> str:
    score = f" score {d['score']:.4g}" if d.get("score") is not None else ""
    detail = d.get("detail") or {}
    kind = "cut spans" if detail.get("span_only") else "dropped"
    extra = ""
    if "benchmark" in detail:
        extra = f" (benchmark {detail['benchmark']}, item {detail.get('item_id')})"
    return f"  {kind} by {d['stage']} / {d['filter']}: {d['reason']}{score}{extra}"


def _masked_lines(attributes: dict[str, Any]) -> list[str]:
    """What a masking modifier (pii_mask_v1) replaced: each span's kind and place in the text it masked."""
    lines = []
    for key, spans in sorted(attributes.items()):
        if key.endswith("/masked_spans") and spans:
            kinds = collections.Counter(kind for _, _, kind in spans)
            summary = ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
            lines.append(f"  masked by {key.split('/', 1)[0]}: {summary}")
            lines.extend(f"    {kind} at characters {start}..{end} of the text before masking" for start, end, kind in spans)
    return lines


def format_record(record: dict[str, Any]) -> str:
    if record["kind"] == "quarantine":
        return "\n".join(
            [
                f"quarantined record of source {record['source']}: {record['reason']}, never became a document",
                f"input: {_where(record)}",
                f"excerpt: {record['excerpt']}",
            ]
        )
    lines = [
        f"document {record['id']} (source {record['source']}): {record['status']}",
        f"input: {_where(record)}",
    ]
    if record.get("url"):
        lines.append(f"url: {record['url']}")
    lines.extend(_masked_lines(record.get("attributes") or {}))
    lines.extend(_decision_line(d) for d in record["decisions"])
    cluster = record.get("cluster")
    if cluster:
        rep = (
            "itself"
            if (cluster["kept_source"], cluster["kept_id"]) == (record["source"], record["id"])
            else f"{cluster['kept_id']} (source {cluster['kept_source']})"
        )
        lines.append(
            f"dedup cluster {cluster['cluster_id']} of {cluster['cluster_size']} documents; kept representative: {rep}"
        )
    for piece in record.get("pieces", []):
        lines.append(f"  published as {piece['id']} in {piece['document']} line {piece['line']}")
    if record["status"] == "kept":
        if record["placements"]:
            by_shard = collections.Counter(p["shard"] for p in record["placements"])
            lines.append(
                f"  in the mix {len(record['placements'])} times: "
                + ", ".join(f"{s} x{n}" for s, n in sorted(by_shard.items()))
            )
            lines.extend(
                f"    {p['shard']} tokens {p['start']}..{p['end']} repetition {p['repetition']} ({p['id']})"
                for p in record["placements"]
            )
        else:
            lines.append("  kept by curation but not sampled into the mix")
    return "\n".join(lines)
