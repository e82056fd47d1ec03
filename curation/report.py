"""The end of a run: the rejection ledger and quarantine as Parquet, stats.json (per source: read, kept,
rejected by stage/filter/reason, quarantined, tokens, repetition), and the printed summary. The invariant
read = kept + rejected + quarantined is checked per source, so no document is ever lost unaccounted."""

from __future__ import annotations

import collections
import textwrap
from typing import Any

import orjson
import pyarrow as pa

from curation import storage
from curation.document import Rejection, base_id
from curation.errors import AccountingError
from curation.stages.curate import PoolFile
from curation.stages.decisions import Decisions, read_decisions, rejection_sort_key
from curation.stages.decontaminate import write_decontamination_report
from curation.stages.mix import MixResult
from curation.stages.publish import publish_documents
from curation.stages.tokenize import TokenFile
from curation.stages.verdicts import KEPT, read_pool_counts
from curation.writers import write_parquet_rows

EDIT_STAGE = "edit"

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


def all_rejections(decisions: Decisions, token_files: list[TokenFile]) -> list[Rejection]:
    rows = list(decisions.rejections)
    for tf in token_files:
        rows.extend(
            Rejection(doc_id=i, source=tf.source, stage=EDIT_STAGE, filter="span_edits", reason="empty_after_edits", uri=tf.input_name)
            for i in tf.emptied
        )
    return sorted(rows, key=rejection_sort_key)


def _write_ledger(ctx, rejections: list[Rejection], pools: list[PoolFile], decide_quarantined: list[dict[str, Any]]) -> None:
    def ledger_row(r: Rejection) -> dict[str, Any]:
        row = r.to_dict()
        row["detail"] = orjson.dumps(row["detail"], option=orjson.OPT_SORT_KEYS).decode() if row["detail"] is not None else None
        return row

    write_parquet_rows(storage.join(ctx.layout.ledger_dir, "rejections.parquet"), (ledger_row(r) for r in rejections), LEDGER_SCHEMA)
    quarantine_rows = []
    for pool in pools:
        uri = ctx.layout.pool_prefix(pool.source, pool.digest) + ".quarantine.jsonl"
        with storage.open_binary(uri) as f:
            quarantine_rows.extend(orjson.loads(line) for line in f if line.strip())
    quarantine_rows.extend(decide_quarantined)
    write_parquet_rows(storage.join(ctx.layout.ledger_dir, "quarantine.parquet"), quarantine_rows, QUARANTINE_SCHEMA)


def source_stats(ctx, pools, decisions: Decisions, rejections, token_files, mix: MixResult, kept_verdicts: dict[str, int]) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}
    for name in ctx.sources:
        stats[name] = {
            "files": 0,
            # Files that gave no record at all (no document, no quarantine row): empty or blank lines only.
            "empty_files": 0,
            # Symlinks the source's globs left out, since they lead outside the glob's folder; never read.
            "skipped_symlinks": ctx.skipped_symlinks.get(name, 0),
            "read": 0,
            "quarantined": 0,
            "quarantine_reasons": collections.Counter(),
            "skipped_reasons": collections.Counter(),
            "rejected": 0,
            "rejected_by": collections.defaultdict(collections.Counter),
            "span_edits": collections.Counter(),
            "kept_documents": 0,
            "kept_tokens": 0,
        }
    for pool in pools:
        s = stats[pool.source]
        s["files"] += 1
        s["empty_files"] += int(pool.read == 0)
        s["read"] += pool.read
        s["quarantined"] += pool.quarantined
        s["quarantine_reasons"].update(pool.quarantine_reasons)
        s["skipped_reasons"].update(pool.skipped_reasons)
    for row in decisions.quarantined:
        s = stats[row["source"]]
        s["quarantined"] += 1
        s["quarantine_reasons"][row["reason"]] += 1
    dropped = set()
    for r in rejections:
        s = stats[r.source]
        if (r.detail or {}).get("span_only"):
            s["span_edits"][f"{r.stage}/{r.reason}"] += 1
            continue
        if (r.source, r.doc_id) in dropped:
            continue  # a document dropped by an earlier stage is counted once, by its first reason
        dropped.add((r.source, r.doc_id))
        s["rejected"] += 1
        s["rejected_by"][r.stage][f"{r.filter}:{r.reason}"] += 1
    originals: dict[str, set[str]] = collections.defaultdict(set)
    for tf in token_files:
        s = stats[tf.source]
        s["kept_tokens"] += tf.tokens
    for tf in token_files:
        import pyarrow.parquet as pq

        with storage.open_seekable(tf.table_uri) as f:
            ids = pq.read_table(f, columns=["id"]).column("id").to_pylist()
        originals[tf.source].update(base_id(i) for i in ids)
    for name, s in stats.items():
        s["kept_documents"] = len(originals[name])
        emptied = sum(len(tf.emptied) for tf in token_files if tf.source == name)
        if kept_verdicts.get(name, 0) != s["kept_documents"] + emptied:
            raise AccountingError(
                f"source {name}: {kept_verdicts.get(name, 0)} documents judged kept, but {s['kept_documents']} tokenized "
                f"and {emptied} emptied by span edits"
            )
        if s["read"] != s["kept_documents"] + s["rejected"] + s["quarantined"]:
            raise AccountingError(
                f"source {name}: read {s['read']} != kept {s['kept_documents']} + rejected {s['rejected']} + quarantined {s['quarantined']}"
            )
        s.update(mix.per_source.get(name, {}))
        s["quarantine_reasons"] = dict(sorted(s["quarantine_reasons"].items()))
        s["skipped_reasons"] = dict(sorted(s["skipped_reasons"].items()))
        s["rejected_by"] = {stage: dict(sorted(c.items())) for stage, c in sorted(s["rejected_by"].items())}
        s["span_edits"] = dict(sorted(s["span_edits"].items()))
    total_achieved = sum(s.get("achieved_tokens", 0) for s in stats.values())
    mix_cfg = ctx.manifest.mix
    for name, s in stats.items():
        s["achieved_ratio"] = (s.get("achieved_tokens", 0) / total_achieved) if total_achieved else 0.0
        cfg = mix_cfg.sources.get(name) if mix_cfg else None
        if cfg is not None and cfg.ratio is not None:
            s["requested_ratio"] = cfg.ratio
        elif mix_cfg is not None and mix_cfg.target_tokens and cfg is not None:
            s["requested_ratio"] = cfg.tokens / mix_cfg.target_tokens
        else:
            s["requested_ratio"] = None
    return stats


def cluster_size_counts(rejections: list[Rejection]) -> dict[str, int]:
    """Duplicate clusters (two or more documents) by size; every other kept document is a singleton."""
    sizes = {
        r.detail["cluster_id"]: r.detail["cluster_size"]
        for r in rejections
        if r.stage == "dedupe" and r.detail and "cluster_id" in r.detail
    }
    return {str(size): n for size, n in sorted(collections.Counter(sizes.values()).items())}


def contamination_summary(rejections: list[Rejection]) -> dict[str, dict[str, int]]:
    """Per benchmark: items matched, training documents dropped, documents with spans cut."""
    items: dict[str, set] = collections.defaultdict(set)
    dropped: dict[str, set] = collections.defaultdict(set)
    cut: dict[str, set] = collections.defaultdict(set)
    for r in rejections:
        if r.stage != "decontaminate" or not r.detail:
            continue
        benchmark = r.detail.get("benchmark", "?")
        items[benchmark].add(r.detail.get("item_id"))
        (cut if r.detail.get("span_only") else dropped)[benchmark].add((r.source, r.doc_id))
    return {
        b: {"items_matched": len(items[b]), "documents_dropped": len(dropped[b]), "documents_cut": len(cut[b])}
        for b in sorted(items)
    }


def finish_run(ctx, pools, decisions_dir: str, token_files, mix: MixResult) -> dict[str, Any]:
    decisions = read_decisions(decisions_dir)
    kept_verdicts: collections.Counter = collections.Counter()
    for pool in pools:
        kept_verdicts[pool.source] += (read_pool_counts(decisions_dir, pool.digest) or {}).get(KEPT, 0)
    rejections = all_rejections(decisions, token_files)
    per_source = source_stats(ctx, pools, decisions, rejections, token_files, mix, kept_verdicts)
    publish_documents(ctx, token_files)
    _write_ledger(ctx, rejections, pools, decisions.quarantined)
    m = ctx.manifest
    stats = {
        "name": m.name,
        "version": m.version,
        "manifest_sha256": ctx.loaded.sha256,
        "sources": per_source,
        "totals": {
            key: sum(s[key] for s in per_source.values())
            for key in ("files", "empty_files", "skipped_symlinks", "read", "quarantined", "rejected", "kept_documents", "kept_tokens")
        }
        | {"mixed_tokens": sum(sh["tokens"] for sh in mix.shards), "mixed_documents": sum(sh["documents"] for sh in mix.shards)},
        "shards": mix.shards,
        "contamination_matches": len(decisions.matches),
        "contamination": contamination_summary(rejections),
        "dedupe_cluster_sizes": cluster_size_counts(rejections),
    }
    write_decontamination_report(ctx, decisions.matches)
    with storage.atomic_write(ctx.layout.stats_file) as f:
        f.write(stats_json(stats))
    from curation.lock import write_lock

    write_lock(ctx, pools, token_files, mix)
    return stats


def stats_json(stats: dict[str, Any]) -> bytes:
    """The bytes of stats.json."""
    return orjson.dumps(stats, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)


def format_summary(stats: dict[str, Any]) -> str:
    t = stats["totals"]
    lines = [
        f"{stats['name']} {stats['version']}: read {t['read']:,} documents from {t['files']} files; kept {t['kept_documents']:,}, "
        f"rejected {t['rejected']:,}, quarantined {t['quarantined']:,}"
        + (f" in {stats['elapsed_s']} s" if "elapsed_s" in stats else ""),
    ]
    for name, s in stats["sources"].items():
        lines.append(f"  {name}: read {s['read']:,}  kept {s['kept_documents']:,}  rejected {s['rejected']:,}  quarantined {s['quarantined']:,}")
        for stage, reasons in s["rejected_by"].items():
            by_count = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
            lines.extend(textwrap.wrap(by_count, 110, initial_indent=f"    {stage}: ", subsequent_indent="      "))
        if s["empty_files"]:
            lines.append(f"    empty files (no record): {s['empty_files']}")
        if s["quarantine_reasons"]:
            lines.append("    quarantine: " + ", ".join(f"{k} {v}" for k, v in s["quarantine_reasons"].items()))
        if s["skipped_reasons"]:
            lines.append("    skipped by design: " + ", ".join(f"{k} {v}" for k, v in s["skipped_reasons"].items()))
        if s["span_edits"]:
            lines.append("    span edits: " + ", ".join(f"{k} {v}" for k, v in s["span_edits"].items()))
    if "phases_s" in stats:
        lines.append("  time: " + ", ".join(f"{phase} {seconds} s" for phase, seconds in stats["phases_s"].items()))
    lines.append(format_mix_table(stats))
    lines.append(f"outputs: {stats['output']} (shards/, documents/, ledger/, stats.json, lock.json)")
    return "\n".join(lines)


def format_mix_table(stats: dict[str, Any]) -> str:
    header = f"{'source':<14}{'documents':>11}{'tokens':>14}{'repetition':>12}{'requested':>11}{'achieved':>10}"
    lines = [header, "-" * len(header)]
    for name, s in stats["sources"].items():
        requested = f"{s['requested_ratio']:.4f}" if s.get("requested_ratio") is not None else "-"
        lines.append(
            f"{name:<14}{s['kept_documents']:>11,}{s.get('achieved_tokens', 0):>14,}{s.get('repetition', 0):>12.3f}"
            f"{requested:>11}{s['achieved_ratio']:>10.4f}"
        )
    t = stats["totals"]
    lines.append(f"{'total':<14}{t['mixed_documents']:>11,}{t['mixed_tokens']:>14,}   in {len(stats['shards'])} shards")
    return "\n".join(lines)
