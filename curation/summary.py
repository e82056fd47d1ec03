"""What a finished run prints, from its stats alone (stats.json plus the run's timings): the summary of
`curation run`, its one-line result under `--quiet`, and the per-source table of `curation stats`. Kept
out of curation.report, which finishes a run, so reading a release never imports the pipeline."""

from __future__ import annotations

import textwrap
from typing import Any


def format_result(stats: dict[str, Any]) -> str:
    """One line: what was kept and mixed, where, and in how long."""
    t = stats["totals"]
    took = f" in {stats['elapsed_s']} s" if "elapsed_s" in stats else ""
    return (
        f"{stats['name']} {stats['version']}: kept {t['kept_documents']:,} of {t['read']:,} documents; "
        f"{t['mixed_tokens']:,} tokens in {len(stats['shards'])} shards at {stats['output']}{took}"
    )


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
    """Per source, the documents kept and the tokens mixed from them. The mix counts a document once per
    repetition or piece, so its document count is a figure of its own, beside the total, never in the
    kept column."""
    header = f"{'source':<14}{'kept docs':>11}{'mixed tokens':>14}{'repetition':>12}{'requested':>11}{'achieved':>10}"
    lines = [header, "-" * len(header)]
    for name, s in stats["sources"].items():
        requested = f"{s['requested_ratio']:.4f}" if s.get("requested_ratio") is not None else "-"
        lines.append(
            f"{name:<14}{s['kept_documents']:>11,}{s.get('achieved_tokens', 0):>14,}{s.get('repetition', 0):>12.3f}"
            f"{requested:>11}{s['achieved_ratio']:>10.4f}"
        )
    t = stats["totals"]
    lines.append(
        f"{'total':<14}{t['kept_documents']:>11,}{t['mixed_tokens']:>14,}"
        f"   mixed as {t['mixed_documents']:,} documents in {len(stats['shards'])} shards"
    )
    return "\n".join(lines)
