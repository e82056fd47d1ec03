"""Audit an output: which document holds a given token, and every decision taken about a document.

Built once at the end of a run into `audit/`: one JSON line per document (or quarantined record) with its
provenance, attributes, ledger rows, dedup cluster and placements, plus sorted 64-bit key arrays (by id,
by input location) and per-shard token-start arrays. A query binary searches the arrays by ranged reads
and reads one line, so it costs the same on a 1M-document output as on a small one, local or on S3 (cf. Dolma's attribute
files and OLMo's "what's in my data" lookups, made offline and exact).
"""

from __future__ import annotations

import bisect
import collections
import io
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import orjson
import pyarrow.parquet as pq
import xxhash

from curation import storage
from curation.document import base_id
from curation.errors import CurationError, InputError
from curation.writers import iter_zstd_frames, read_zstd_frame

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


# ---------------------------------------------------------------- building


def _new_record(source: str, doc_id: str) -> dict[str, Any]:
    return {
        "kind": "document",
        "source": source,
        "id": doc_id,
        "status": "kept",
        "uri": None,
        "line": None,
        "offset": None,
        "url": None,
        "attributes": {},
        "decisions": [],
        "cluster": None,
        "pieces": [],
        "placements": [],
    }


def _take_provenance(record: dict[str, Any], doc: dict[str, Any]) -> None:
    prov = doc.get("provenance") or {}
    record["uri"] = prov.get("uri")
    record["line"] = prov.get("line")
    record["offset"] = prov.get("offset")
    record["url"] = (doc.get("metadata") or {}).get("url")
    record["attributes"] = doc.get("attributes") or {}


def _ledger_rows(root: str) -> Iterator[dict[str, Any]]:
    path = storage.join(root, "ledger", "rejections.parquet")
    if not storage.exists(path):
        return
    with storage.open_seekable(path) as f:
        table = pq.read_table(f)
    for row in table.to_pylist():
        row["detail"] = orjson.loads(row["detail"]) if row["detail"] else None
        yield row


def _quarantine_rows(root: str) -> list[dict[str, Any]]:
    path = storage.join(root, "ledger", "quarantine.parquet")
    if not storage.exists(path):
        return []
    with storage.open_seekable(path) as f:
        return pq.read_table(f).to_pylist()


def _published_documents(root: str) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file relative to root, where in the file, document) of every curated document under documents/.

    Where is the line number and, for .zst files, the compressed offset of the zstd frame holding the line
    and the frame's first line, so a query decompresses one frame rather than the file up to the line.
    """
    try:
        files = storage.list_files(storage.join(root, "documents", "*", "part-*.jsonl*"))
    except InputError:
        return
    for uri in files:
        rel = storage.relative(uri, root)
        if uri.endswith(".zst"):
            line_number = 0
            with storage.open_binary(uri) as raw:
                for frame_offset, data in iter_zstd_frames(raw):
                    first_line = line_number
                    for line in data.splitlines():
                        where = {"line": line_number, "frame": [frame_offset, first_line]}
                        yield rel, where, orjson.loads(line)
                        line_number += 1
            continue
        with storage.open_decompressed(uri) as f:
            for line_number, line in enumerate(f):
                yield rel, {"line": line_number}, orjson.loads(line)


def _shard_indexes(root: str) -> list[tuple[str, dict[str, list]]]:
    try:
        files = storage.list_files(storage.join(root, "shards", "part-*.index"))
    except InputError:
        return []
    tables = []
    for uri in files:
        with storage.open_seekable(uri) as f:
            table = pq.read_table(f, columns=["start", "end", "doc_id", "source", "repetition"])
        tables.append((shard_name(uri), table.to_pydict()))
    return tables


def collect_records(
    root: str, pool_uris: list[str] = ()
) -> tuple[list[dict[str, Any]], dict[str, list[tuple[int, str, str, int]]]]:
    """Every document record and quarantined record of an output, sorted, and per shard its
    (start, source, doc id, end) rows. Pools (the output's cache) supply provenance and scores of dropped documents."""
    records: dict[tuple[str, str], dict[str, Any]] = {}

    def record(source: str, doc_id: str) -> dict[str, Any]:
        key = (source, base_id(doc_id))
        if key not in records:
            records[key] = _new_record(*key)
        return records[key]

    dropped: set[tuple[str, str]] = set()
    for row in _ledger_rows(root):
        r = record(row["source"], row["doc_id"])
        detail = row["detail"] or {}
        r["decisions"].append({k: row[k] for k in ("stage", "filter", "reason", "score", "detail")})
        if "kept_id" in detail:
            r["cluster"] = {
                k: detail.get(k) for k in ("cluster_id", "cluster_size", "kept_id", "kept_source")
            }
        if not detail.get("span_only") and r["status"] == "kept":
            r["status"] = "dropped"
            r["uri"] = r["uri"] or row["uri"]
            dropped.add((r["source"], r["id"]))
    for rel, where, doc in _published_documents(root):
        r = record(doc["source"], doc["id"])
        if not r["pieces"]:
            _take_provenance(r, doc)
        r["pieces"].append({"id": doc["id"], "document": rel, **where})
        attrs = doc.get("attributes") or {}
        if "dedupe/cluster_id" in attrs and r["cluster"] is None:
            r["cluster"] = {
                "cluster_id": attrs["dedupe/cluster_id"],
                "cluster_size": attrs.get("dedupe/cluster_size"),
                "kept_id": r["id"],
                "kept_source": r["source"],
            }
    for uri in pool_uris:
        with storage.open_decompressed(uri) as f:
            for line in f:
                doc = orjson.loads(line)
                key = (doc["source"], doc["id"])
                if key in dropped:
                    _take_provenance(records[key], doc)
    placements: dict[str, list[tuple[int, str, str, int]]] = {}
    for shard, table in _shard_indexes(root):
        rows = []
        for start, end, doc_id, source, repetition in zip(
            table["start"], table["end"], table["doc_id"], table["source"], table["repetition"]
        ):
            r = record(source, doc_id)
            r["placements"].append(
                {"id": doc_id, "shard": shard, "start": start, "end": end, "repetition": repetition}
            )
            rows.append((start, source, doc_id, end))
        placements[shard] = rows
    ordered = [records[k] for k in sorted(records)]
    for q in sorted(
        _quarantine_rows(root),
        key=lambda q: (q["source"], q["uri"], q["line"] or -1, q["offset"] or -1, q["reason"]),
    ):
        ordered.append(
            {
                "kind": "quarantine",
                "source": q["source"],
                "id": None,
                "status": "quarantined",
                "uri": q["uri"],
                "line": q["line"],
                "offset": q["offset"],
                "reason": q["reason"],
                "excerpt": q["excerpt"],
            }
        )
    return ordered, placements


def _save_array(uri: str, array: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    with storage.atomic_write(uri) as f:
        f.write(buffer.getvalue())


def _sorted_keys(pairs: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    keys = np.fromiter((k for k, _ in pairs), dtype=np.uint64, count=len(pairs))
    rows = np.fromiter((r for _, r in pairs), dtype=np.uint64, count=len(pairs))
    order = np.argsort(keys, kind="stable")
    return keys[order], rows[order]


def build_audit_index(root: str, pool_uris: list[str] = ()) -> int:
    """Write `root/audit/`; returns the number of records. Same output bytes for the same output folder."""
    records, placements = collect_records(root, pool_uris)
    folder = storage.join(root, AUDIT_DIR)
    offsets = np.zeros(len(records) + 1, dtype=np.uint64)
    row_of: dict[tuple[str, str], int] = {}
    id_pairs: list[tuple[int, int]] = []
    location_pairs: list[tuple[int, int]] = []
    with storage.atomic_write(storage.join(folder, RECORDS)) as f:
        for i, r in enumerate(records):
            data = orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n"
            f.write(data)
            offsets[i + 1] = offsets[i] + len(data)
            if r["kind"] == "document":
                row_of[(r["source"], r["id"])] = i
                id_pairs.append((id_key(r["source"], r["id"]), i))
                id_pairs.append((source_free_id_key(r["id"]), i))
            if r["uri"] is not None:
                if r["line"] is not None:
                    location_pairs.append((location_key(r["uri"], line=r["line"]), i))
                if r["offset"] is not None:
                    location_pairs.append((location_key(r["uri"], offset=r["offset"]), i))
    _save_array(storage.join(folder, RECORD_OFFSETS), offsets)
    for (keys_name, rows_name), pairs in (
        ((ID_KEYS, ID_ROWS), id_pairs),
        ((LOCATION_KEYS, LOCATION_ROWS), location_pairs),
    ):
        keys, rows = _sorted_keys(pairs)
        _save_array(storage.join(folder, keys_name), keys)
        _save_array(storage.join(folder, rows_name), rows)
    for shard, rows in sorted(placements.items()):
        _save_array(
            storage.join(folder, "shards", f"{shard}.{SHARD_STARTS}"),
            np.array([s for s, *_ in rows], dtype=np.uint64),
        )
        _save_array(
            storage.join(folder, "shards", f"{shard}.{SHARD_ROWS}"),
            np.array([row_of[(source, base_id(doc_id))] for _, source, doc_id, _ in rows], dtype=np.uint64),
        )
    return len(records)


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
