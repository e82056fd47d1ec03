"""The contamination report of a run, per benchmark: items found in the training data, training documents
affected and examples, written as JSON (for tools) and Markdown (for the dataset card).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import orjson

from curation import storage
from filters.decontaminate.detect import Match
from filters.decontaminate.index import FILTER_NAME

EXAMPLES_PER_BENCHMARK = 5
EXCERPT_CHARS = 300


@dataclass(frozen=True, slots=True)
class DocumentMatch:
    """A match with the training document it was found in and the matched text (cut to EXCERPT_CHARS)."""

    source: str
    doc_id: str
    match: Match
    excerpt: str


def summarize(matches: Iterable[DocumentMatch], items_indexed: dict[str, int] | None = None) -> dict:
    by_benchmark: dict[str, list[DocumentMatch]] = {}
    for m in matches:
        by_benchmark.setdefault(m.match.benchmark, []).append(m)
    names = sorted(set(by_benchmark) | set(items_indexed or {}))
    benchmarks = {}
    for name in names:
        found = by_benchmark.get(name, [])
        ranked = sorted(
            found, key=lambda m: (-m.match.score, m.source, m.doc_id, m.match.item_id, m.match.start)
        )
        benchmarks[name] = {
            "items_indexed": (items_indexed or {}).get(name),
            "items_found": len({m.match.item_id for m in found}),
            "documents_affected": len({(m.source, m.doc_id) for m in found}),
            "matches": len(found),
            "examples": [
                {"source": m.source, "doc_id": m.doc_id, **m.match.to_dict(), "excerpt": m.excerpt}
                for m in ranked[:EXAMPLES_PER_BENCHMARK]
            ],
        }
    return {"filter": FILTER_NAME, "benchmarks": benchmarks}


def write_report(
    matches: Iterable[DocumentMatch], out_dir: str | Path, items_indexed: dict[str, int] | None = None
) -> dict:
    """Write `decontamination.json` and `decontamination.md` into `out_dir`; returns the summary."""
    summary = summarize(matches, items_indexed)
    with storage.atomic_write(storage.join(str(out_dir), "decontamination.json")) as f:
        f.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    with storage.atomic_write(storage.join(str(out_dir), "decontamination.md")) as f:
        f.write(_markdown(summary).encode("utf-8"))
    return summary


def _markdown(summary: dict) -> str:
    lines = [
        f"# Decontamination report ({summary['filter']})",
        "",
        "| benchmark | items indexed | items found in training data | training documents affected |",
        "|---|---:|---:|---:|",
    ]
    for name, b in summary["benchmarks"].items():
        indexed = "" if b["items_indexed"] is None else f"{b['items_indexed']:,}"
        lines.append(f"| {name} | {indexed} | {b['items_found']:,} | {b['documents_affected']:,} |")
    for name, b in summary["benchmarks"].items():
        if not b["examples"]:
            continue
        lines += ["", f"## {name}", ""]
        for e in b["examples"]:
            excerpt = " ".join(e["excerpt"].split()).replace("|", "\\|")
            lines.append(
                f"- `{e['source']}/{e['doc_id']}` matches item `{e['item_id']}` (overlap {e['score']:.2f}, "
                f"chars {e['span'][0]}-{e['span'][1]}): {excerpt}"
            )
    return "\n".join(lines) + "\n"
