"""The dataset card of an output: card.md and a self-contained card.html (inline SVG, no external assets),
generated from stats.json and lock.json alone — tokens per source, the filter funnel per source, dedup
cluster sizes and contamination — after the data cards of Dolma and FineWeb, with numbers formatted as
`curation stats` prints them so the two can be checked against each other."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import orjson

from curation import storage

STAGE_ORDER = ("quality", "dedupe", "decontaminate", "edit")
BAR_COLOR = "#4c78a8"


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    # (label, value) pairs drawn as a bar chart in the HTML card
    bars: list[tuple[str, float]] | None = None


def mix_rows(stats: dict[str, Any]) -> list[list[str]]:
    """Per source: documents, tokens, repetition, requested and achieved ratio, formatted as `curation stats`."""
    rows = []
    for name, s in stats["sources"].items():
        requested = f"{s['requested_ratio']:.4f}" if s.get("requested_ratio") is not None else "-"
        rows.append(
            [
                name,
                f"{s['kept_documents']:,}",
                f"{s.get('achieved_tokens', 0):,}",
                f"{s.get('repetition', 0):.3f}",
                requested,
                f"{s['achieved_ratio']:.4f}",
            ]
        )
    t = stats["totals"]
    rows.append(["total", f"{t['mixed_documents']:,}", f"{t['mixed_tokens']:,}", "", "", ""])
    return rows


def funnel(source_stats: dict[str, Any]) -> list[tuple[str, int]]:
    """Documents left after each step: read, readable, then each rejecting stage in pipeline order."""
    steps = [("read", source_stats["read"])]
    left = source_stats["read"] - source_stats["quarantined"]
    steps.append(("readable (not quarantined)", left))
    rejected_by = source_stats["rejected_by"]
    stages = [s for s in STAGE_ORDER if s in rejected_by] + sorted(
        s for s in rejected_by if s not in STAGE_ORDER
    )
    for stage in stages:
        left -= sum(rejected_by[stage].values())
        steps.append((f"after {stage}", left))
    steps.append(("kept", source_stats["kept_documents"]))
    return steps


def card_tables(stats: dict[str, Any], lock: dict[str, Any]) -> list[Table]:
    tables = [
        Table(
            "Tokens per source",
            ["source", "documents", "tokens", "repetition", "requested", "achieved"],
            mix_rows(stats),
            [(name, s.get("achieved_tokens", 0)) for name, s in stats["sources"].items()],
        )
    ]
    for name, s in stats["sources"].items():
        steps = funnel(s)
        reasons = [
            (f"dropped by {stage} {reason}", n)
            for stage, by in s["rejected_by"].items()
            for reason, n in by.items()
        ]
        reasons += [(f"quarantined: {reason}", n) for reason, n in s["quarantine_reasons"].items()]
        rows = [[label, f"{n:,}"] for label, n in steps + reasons]
        tables.append(
            Table(f"Filter funnel: {name}", ["step", "documents"], rows, [(label, n) for label, n in steps])
        )
    sizes = {int(size): n for size, n in stats.get("dedupe_cluster_sizes", {}).items()}
    tables.append(
        Table(
            "Dedup cluster sizes",
            ["cluster size", "clusters"],
            [[f"{size:,}", f"{n:,}"] for size, n in sizes.items()] or [["no duplicate clusters", "0"]],
            [(str(size), n) for size, n in sizes.items()] or None,
        )
    )
    contamination = [
        [b, f"{c['items_matched']:,}", f"{c['documents_dropped']:,}", f"{c['documents_cut']:,}"]
        for b, c in stats.get("contamination", {}).items()
    ]
    tables.append(
        Table(
            f"Contamination ({stats.get('contamination_matches', 0):,} matches)",
            ["benchmark", "items matched", "documents dropped", "documents with spans cut"],
            contamination or [["none found", "0", "0", "0"]],
        )
    )
    libraries = ", ".join(f"{k} {v}" for k, v in lock["libraries"].items() if v)
    inputs_bytes = sum(e["size"] for e in lock["inputs"])
    tables.append(
        Table(
            "Provenance",
            ["what", "value"],
            [
                ["manifest sha256", lock["manifest_sha256"]],
                ["code version", f"curation {lock['code_version']} (Python {lock['python']})"],
                ["libraries", libraries],
                ["seeds", ", ".join(f"{k} {v}" for k, v in lock["seeds"].items())],
                [
                    "inputs",
                    f"{len(lock['inputs']):,} files, {inputs_bytes:,} bytes (sha256 of each in lock.json)",
                ],
                [
                    "tokenizer",
                    f"{lock['tokenizer']['uri'].rsplit('/', 1)[-1]} sha256 {lock['tokenizer']['sha256']}",
                ],
                *[["model", f"{e['uri'].rsplit('/', 1)[-1]} sha256 {e['sha256']}"] for e in lock["models"]],
                *[
                    ["filter list", f"{'/'.join(e['uri'].rsplit('/', 2)[-2:])} sha256 {e['sha256']}"]
                    for e in lock.get("filter_lists", [])
                ],
                *[
                    ["filter plugin", f"{e['filter']} from {e['distribution']} {e['version']}"]
                    for e in lock.get("plugins", [])
                ],
                *[
                    ["eval set", f"{e['uri'].rsplit('/', 1)[-1]} sha256 {e['sha256']}"]
                    for e in lock["eval_sets"]
                ],
            ],
        )
    )
    return tables


def _summary(stats: dict[str, Any]) -> str:
    t = stats["totals"]
    return (
        f"Read {t['read']:,} documents from {t['files']:,} files; kept {t['kept_documents']:,}, rejected {t['rejected']:,}, "
        f"quarantined {t['quarantined']:,}. The mix holds {t['mixed_documents']:,} documents and {t['mixed_tokens']:,} tokens "
        f"in {len(stats['shards'])} shards."
    )


def render_markdown(stats: dict[str, Any], tables: list[Table]) -> str:
    out = [f"# {stats['name']} {stats['version']}", "", _summary(stats), ""]
    for table in tables:
        out += [
            f"## {table.title}",
            "",
            "| " + " | ".join(table.header) + " |",
            "|" + "---|" * len(table.header),
        ]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in table.rows]
        out.append("")
    return "\n".join(out)


def bar_chart_svg(bars: list[tuple[str, float]], width: int = 640, bar_height: int = 18) -> str:
    """Horizontal bars with labels and values, scaled to the largest value."""
    label_width, value_width, gap = 200, 110, 6
    top = max((v for _, v in bars), default=0) or 1
    height = len(bars) * (bar_height + gap) + gap
    span = width - label_width - value_width
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for i, (label, value) in enumerate(bars):
        y = gap + i * (bar_height + gap)
        w = max(1.0, span * value / top) if value else 0.0
        text_y = y + bar_height - 4
        parts.append(
            f'<text x="{label_width - 6}" y="{text_y}" text-anchor="end" font-size="12">{html.escape(label)}</text>'
        )
        parts.append(
            f'<rect x="{label_width}" y="{y}" width="{w:.1f}" height="{bar_height}" fill="{BAR_COLOR}"><title>{html.escape(label)}: {value:,}</title></rect>'
        )
        parts.append(f'<text x="{label_width + w + 4:.1f}" y="{text_y}" font-size="12">{value:,}</text>')
    parts.append("</svg>")
    return "".join(parts)


_STYLE = (
    "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 8px}"
    "td:not(:first-child){text-align:right;font-variant-numeric:tabular-nums}"
)


def render_html(stats: dict[str, Any], tables: list[Table]) -> str:
    title = html.escape(f"{stats['name']} {stats['version']}")
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        f"<p>{html.escape(_summary(stats))}</p>",
    ]
    for table in tables:
        out.append(f"<h2>{html.escape(table.title)}</h2>")
        if table.bars:
            out.append(f"<figure>{bar_chart_svg(table.bars)}</figure>")
        out.append(
            "<table><thead><tr>"
            + "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
            + "</tr></thead><tbody>"
        )
        out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows]
        out.append("</tbody></table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_card(root: str, lock: dict[str, Any]) -> tuple[str, str]:
    """Write root/card.md and root/card.html from root/stats.json, `lock` and the ledger; returns their paths."""
    with storage.open_binary(storage.join(root, "stats.json")) as f:
        stats = orjson.loads(f.read())
    tables = card_tables(stats, lock)
    paths = (storage.join(root, "card.md"), storage.join(root, "card.html"))
    for path, text in zip(paths, (render_markdown(stats, tables), render_html(stats, tables))):
        with storage.atomic_write(path) as f:
            f.write(text.encode())
    return paths
