"""The end of a run: the rejection ledger and quarantine as Parquet, stats.json (per source: read, kept,
rejected by stage/filter/reason, quarantined, tokens, repetition); curation.summary prints it. The invariant
read = kept + rejected + quarantined is checked per source, so no document is ever lost unaccounted."""

from __future__ import annotations

import collections
from typing import Any

import orjson

from curation import storage
from curation.errors import AccountingError
from curation.stages.decisions import read_matches
from curation.stages.decontaminate import write_decontamination_report
from curation.stages.mix import MixResult, mix_and_write
from curation.stages.publish import release_steps
from curation.stages.verdicts import KEPT, read_pool_counts
from filters.decontaminate.evalsets import resolve_benchmarks


def source_stats(ctx, pools, counts: dict[str, Any], token_files, mix: MixResult, kept_verdicts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per source, from the pools' own records and the ledger's counts (curation/stages/ledger.py)."""
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
            "quarantine_reasons": collections.Counter(counts["decide_quarantined"].get(name, {})),
            "skipped_reasons": collections.Counter(),
            "rejected": counts["rejected"].get(name, 0),
            "rejected_by": counts["rejected_by"].get(name, {}),
            "span_edits": counts["span_edits"].get(name, {}),
            "kept_documents": counts["kept_documents"].get(name, 0),
            "kept_tokens": 0,
            "origin": ctx.sources[name].origin,
            "license": ctx.sources[name].licenses,
            "languages": ctx.sources[name].languages,
            **counts["kept_profiles"].get(name, {"length_histograms": {"characters": [], "tokens": []}, "pii_masked": {}}),
        }
        stats[name]["quarantined"] = sum(stats[name]["quarantine_reasons"].values())
    for pool in pools:
        s = stats[pool.source]
        s["files"] += 1
        s["empty_files"] += int(pool.read == 0)
        s["read"] += pool.read
        s["quarantined"] += pool.quarantined
        s["quarantine_reasons"].update(pool.quarantine_reasons)
        s["skipped_reasons"].update(pool.skipped_reasons)
    for tf in token_files:
        stats[tf.source]["kept_tokens"] += tf.tokens
    for name, s in stats.items():
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


def finish_run(ctx, pools, decisions_dir: str, token_files) -> dict[str, Any]:
    """The mix and the release in one pipeline (the shards and documents, then the ledger, the audit index
    and the checksums), then stats.json, the card and the lock."""
    kept_verdicts: collections.Counter = collections.Counter()
    for pool in pools:
        kept_verdicts[pool.source] += (read_pool_counts(decisions_dir, pool.digest) or {}).get(KEPT, 0)
    # Before the release's pipeline, whose checksums cover the report.
    write_decontamination_report(ctx, read_matches(decisions_dir))
    with release_steps(ctx, pools, decisions_dir, token_files) as steps:
        mix = mix_and_write(ctx, token_files, then=steps.build, phase="release")
        published = steps.read()
    counts = published.counts
    per_source = source_stats(ctx, pools, counts, token_files, mix, kept_verdicts)
    m = ctx.manifest
    stats = {
        "name": m.name,
        "version": m.version,
        "description": m.description,
        "manifest_sha256": ctx.loaded.sha256,
        "sources": per_source,
        "totals": {
            key: sum(s[key] for s in per_source.values())
            for key in ("files", "empty_files", "skipped_symlinks", "read", "quarantined", "rejected", "kept_documents", "kept_tokens")
        }
        | {"mixed_tokens": sum(sh["tokens"] for sh in mix.shards), "mixed_documents": sum(sh["documents"] for sh in mix.shards)},
        "shards": mix.shards,
        "contamination_matches": counts["contamination_matches"],
        "contamination": benchmarks_checked(ctx, counts["contamination"]),
        "dedupe_cluster_sizes": counts["dedupe_cluster_sizes"],
    }
    with storage.atomic_write(ctx.layout.stats_file) as f:
        f.write(stats_json(stats))
    from curation.lock import write_lock

    write_lock(ctx, pools, published.outputs)
    return stats


def benchmarks_checked(ctx, found: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Per benchmark the run checked, what it found, zeros included: a clean benchmark is a result too."""
    config = ctx.manifest.decontaminate
    if config is None:
        return found
    names = {b.config.name for b in resolve_benchmarks(config, ctx.loaded.path.parent, ctx.loaded.relocated)}
    nothing = {"items_matched": 0, "documents_dropped": 0, "documents_cut": 0}
    return {name: found.get(name, nothing) for name in sorted(names | set(found))}


def stats_json(stats: dict[str, Any]) -> bytes:
    """The bytes of stats.json."""
    return orjson.dumps(stats, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS)
