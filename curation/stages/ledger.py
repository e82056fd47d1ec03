"""The rejection and quarantine ledgers (ledger/*.parquet) and every count stats.json takes from them,
written on the workers of the run's last pipeline (curation/stages/publish.py; issue #12: nothing that
grows with the corpus runs in the launcher).

One task merges the sorted rejections of decide with the documents left empty by span edits (sorted into
runs by other tasks), writes the ledger in fixed row groups as it goes and counts; the launcher reads back
one small file of counts. The task holds a row group and one row per run, whatever the corpus."""

from __future__ import annotations

import collections
import heapq
import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import apache_beam as beam
import orjson
import pyarrow as pa

from curation import storage
from curation.document import Rejection
from curation.stages.decisions import MATCHES, QUARANTINE, REJECTIONS, ledger_key
from curation.stages.kept_profile import merge_profiles, profile_token_file
from curation.stages.sorted_runs import SpilledRows, WriteSortedRunsFn, run_rows
from curation.stages.tokenize import TokenFile
from curation.writers import write_parquet_rows

EDIT_STAGE = "edit"
COUNTS = "counts.json"

LEDGER_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("source", pa.string()),
        ("stage", pa.string()),
        ("filter", pa.string()),
        ("reason", pa.string()),
        ("score", pa.float64()),
        ("detail", pa.string()),
        ("uri", pa.string()),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("uri", pa.string()),
        ("reason", pa.string()),
        ("line", pa.int64()),
        ("offset", pa.int64()),
        ("excerpt", pa.string()),
    ]
)


def _emptied_rows(meta_uri: str) -> Iterator[dict[str, Any]]:
    with storage.open_binary(meta_uri) as f:
        tf = TokenFile.from_dict(orjson.loads(f.read()))
    for doc_id in tf.emptied:
        rejection = Rejection(doc_id, tf.source, EDIT_STAGE, "span_edits", "empty_after_edits", uri=tf.input_name)
        yield rejection.to_dict()


class _Counts:
    """What stats.json needs from the ledger rows, counted as they stream past in ledger order."""

    def __init__(self, work_dir: str):
        self.rejected: collections.Counter = collections.Counter()
        self.rejected_by: dict = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
        self.span_edits: dict = collections.defaultdict(collections.Counter)
        self.decide_quarantined: dict = collections.defaultdict(collections.Counter)
        self.items: dict[str, set] = collections.defaultdict(set)
        self.contaminated: dict = collections.defaultdict(collections.Counter)
        self._last_contaminated: dict[tuple[str, str], tuple[str, str]] = {}
        self._last_dropped: tuple[str, str] | None = None
        self._clusters = SpilledRows(work_dir, "clusters", lambda r: (r["cluster_id"], r["row"]))
        self._rows = 0

    def rejection(self, r: Rejection) -> None:
        # Ledger order puts a document's rows together, so "seen before" is "the row before was it".
        document = (r.source, r.doc_id)
        detail = r.detail or {}
        if r.stage == "decontaminate" and detail:
            benchmark = detail.get("benchmark", "?")
            self.items[benchmark].add(detail.get("item_id"))
            kind = "documents_cut" if detail.get("span_only") else "documents_dropped"
            if self._last_contaminated.get((benchmark, kind)) != document:
                self._last_contaminated[(benchmark, kind)] = document
                self.contaminated[benchmark][kind] += 1
        if r.stage == "dedupe" and "cluster_id" in detail:
            self._clusters.add({"cluster_id": detail["cluster_id"], "row": self._rows, "cluster_size": detail["cluster_size"]})
        self._rows += 1
        if detail.get("span_only"):
            self.span_edits[r.source][f"{r.stage}/{r.reason}"] += 1
        elif document != self._last_dropped:
            # A document dropped by several stages is counted once, by its first reason.
            self._last_dropped = document
            self.rejected[r.source] += 1
            self.rejected_by[r.source][r.stage][f"{r.filter}:{r.reason}"] += 1

    def cluster_sizes(self) -> dict[str, int]:
        """Duplicate clusters (two or more documents) by size; every other kept document is a singleton."""
        sizes: collections.Counter = collections.Counter()
        # Exact and near-duplicate dedupe may name clusters of different sizes by one content hash: the
        # last row in ledger order gives the size, as when the counts were taken from a dict of every row.
        for _, rows in itertools.groupby(self._clusters.merged(), key=lambda r: r["cluster_id"]):
            *_, last = rows
            sizes[last["cluster_size"]] += 1
        return {str(size): n for size, n in sorted(sizes.items())}

    def to_dict(self, matches: int, profiles: Iterable[dict[str, Any]]) -> dict[str, Any]:
        kept = merge_profiles(profiles)
        return {
            "rejected": dict(self.rejected),
            "rejected_by": {s: {stage: dict(c) for stage, c in by.items()} for s, by in self.rejected_by.items()},
            "span_edits": {s: dict(c) for s, c in self.span_edits.items()},
            "decide_quarantined": {s: dict(c) for s, c in self.decide_quarantined.items()},
            "kept_documents": {s: p.pop("kept_documents") for s, p in kept.items()},
            "kept_profiles": kept,
            "contamination_matches": matches,
            "contamination": {
                b: {
                    "items_matched": len(self.items[b]),
                    "documents_dropped": self.contaminated[b]["documents_dropped"],
                    "documents_cut": self.contaminated[b]["documents_cut"],
                }
                for b in sorted(self.items)
            },
            "dedupe_cluster_sizes": self.cluster_sizes(),
        }


def _rows(uri: str) -> Iterator[dict[str, Any]]:
    with storage.open_decompressed(uri) as f:
        for line in f:
            if line.strip():
                yield orjson.loads(line)


class _WriteLedgerFn(beam.DoFn):
    def __init__(self, decisions_dir: str, ledger_dir: str, work_dir: str):
        self._decisions_dir = decisions_dir
        self._ledger_dir = ledger_dir
        self._work_dir = work_dir

    def process(self, quarantine_files: list[str], emptied_runs: list[tuple[str, str]], kept: list[dict[str, Any]]):
        counts = _Counts(self._work_dir)
        # decide's file is sorted by a refinement of the ledger's order. A stable merge: on equal keys decide's
        # rows come first, as the stable sort of both lists that wrote the ledger before put them.
        runs = [run_rows(uri) for _, uri in sorted(emptied_runs)]
        merged = heapq.merge(run_rows(storage.join(self._decisions_dir, REJECTIONS)), *runs, key=ledger_key)

        def ledger_rows() -> Iterator[dict[str, Any]]:
            for row in merged:
                r = Rejection(**row)
                counts.rejection(r)
                row = r.to_dict()
                row["detail"] = orjson.dumps(r.detail, option=orjson.OPT_SORT_KEYS).decode() if r.detail is not None else None
                yield row

        def quarantine_rows() -> Iterator[dict[str, Any]]:
            for uri in quarantine_files:
                yield from _rows(uri)
            for row in _rows(storage.join(self._decisions_dir, QUARANTINE)):
                counts.decide_quarantined[row["source"]][row["reason"]] += 1
                yield row

        write_parquet_rows(storage.join(self._ledger_dir, "rejections.parquet"), ledger_rows(), LEDGER_SCHEMA)
        write_parquet_rows(storage.join(self._ledger_dir, "quarantine.parquet"), quarantine_rows(), QUARANTINE_SCHEMA)
        matches = sum(1 for _ in _rows(storage.join(self._decisions_dir, MATCHES)))
        counts_uri = storage.join(self._work_dir, COUNTS)
        with storage.atomic_write(counts_uri) as f:
            f.write(orjson.dumps(counts.to_dict(matches, kept)))
        yield counts_uri


def ledger_work_dir(ctx) -> str:
    """The ledger's scratch: its sorted runs, and the counts file the launcher reads back."""
    return ctx.layout.cached("ledger", f"{ctx.manifest.name}-{ctx.manifest.version}")


class WriteLedger(beam.PTransform):
    """ledger/rejections.parquet and ledger/quarantine.parquet, written by one task; its output is the one
    uri of the counts stats.json takes from them (per source, per benchmark, per cluster size: never per
    document), which `read_counts` reads back once the pipeline has run."""

    def __init__(self, ctx, pools, decisions_dir: str, token_files: list[TokenFile]):
        super().__init__()
        self._work_dir = ledger_work_dir(ctx)
        self._ledger_dir = ctx.layout.ledger_dir
        self._decisions_dir = decisions_dir
        self._metas = [tf.tokens_uri.removesuffix(".tokens") + ".meta.json" for tf in token_files]
        self._tables = [(tf.source, tf.table_uri, tf.documents_uri) for tf in token_files]
        self._quarantine_files = [ctx.layout.pool_prefix(pool.source, pool.digest) + ".quarantine.jsonl" for pool in pools]

    def expand(self, pbegin):
        emptied = (
            pbegin
            | "ListTokenFiles" >> beam.Create(self._metas)
            | "EmptiedRows" >> beam.FlatMap(_emptied_rows)
            | "SortEmptied" >> beam.ParDo(WriteSortedRunsFn(self._work_dir, "emptied", ledger_key))
        )
        kept = pbegin | "ListTables" >> beam.Create(self._tables) | "ProfileKept" >> beam.MapTuple(profile_token_file)
        return (
            pbegin
            | "ListQuarantine" >> beam.Create([self._quarantine_files])
            | "WriteLedger"
            >> beam.ParDo(
                _WriteLedgerFn(self._decisions_dir, self._ledger_dir, self._work_dir),
                beam.pvalue.AsList(emptied),
                beam.pvalue.AsList(kept),
            )
        )


def read_counts(work_dir: str) -> dict[str, Any]:
    with storage.open_binary(storage.join(work_dir, COUNTS)) as f:
        return orjson.loads(f.read())
