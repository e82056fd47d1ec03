"""The dataset card of an output: card.md (with the Hugging Face metadata header) and a self-contained
card.html (inline SVG, no external assets), generated from stats.json and lock.json alone, after the data
cards of Dolma and FineWeb and Hugging Face's dataset card template: what each source is and under which
licence, how it was filtered, deduplicated, decontaminated and masked, what the mix repeats, and how to
load and regenerate it. Numbers are formatted as `curation stats` prints them so the two can be checked."""

from __future__ import annotations

import hashlib
import html
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml

from curation import storage

STAGE_ORDER = ("quality", "dedupe", "decontaminate", "edit")
BAR_COLOR = "#4c78a8"
# Hugging Face's size_categories, by number of documents.
_SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                    (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    # (label, value) pairs drawn as a bar chart in the HTML card
    bars: list[tuple[str, float]] | None = None
    # paragraphs before the table
    notes: list[str] = field(default_factory=list)
    # a code block after the notes
    code: str | None = None


# Where the lock found the manifest, and the sha256 of every output (this card's among them): neither is
# part of what a release is built from, and a regenerated or relocated copy may name the manifest elsewhere.
_NOT_IN_LOCK_DIGEST = ("outputs", "manifest_path")


def lock_digest(lock: dict[str, Any]) -> str:
    """sha256 of what the lock fixes: inputs, tokenizer, models, lists, eval sets, seeds, manifest hash and
    versions."""
    facts = {k: v for k, v in lock.items() if k not in _NOT_IN_LOCK_DIGEST}
    return hashlib.sha256(orjson.dumps(facts, option=orjson.OPT_SORT_KEYS)).hexdigest()


def size_category(documents: int) -> str:
    return next((name for bound, name in _SIZE_CATEGORIES if documents < bound), "n>1B")


def metadata_header(stats: dict[str, Any], configs: list[dict[str, Any]]) -> dict[str, Any]:
    """The YAML header Hugging Face reads from a dataset's README.md."""
    sources = stats["sources"].values()
    licenses = sorted({lic for s in sources for lic in s.get("license", [])})
    languages = sorted({lang for s in sources for lang in s.get("languages", [])})
    header: dict[str, Any] = {"pretty_name": f"{stats['name']} {stats['version']}"}
    if licenses:
        header["license"] = licenses[0] if len(licenses) == 1 else licenses
    if languages:
        header["language"] = languages
    header |= {
        "task_categories": ["text-generation"],
        "task_ids": ["language-modeling"],
        "size_categories": [size_category(stats["totals"]["kept_documents"])],
        "tags": ["pretraining", "curation"],
        "configs": configs,
    }
    return header


def release_configs(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """One config per source over the release's own documents/ (their metadata differ by source, so the
    sources load together only from `curation export --format hf`)."""
    return [
        {"config_name": name, "data_files": [{"split": "train", "path": f"documents/{name}/part-*.jsonl*"}]}
        for name in stats["sources"]
    ]


def mix_rows(stats: dict[str, Any]) -> list[list[str]]:
    """Per source: kept documents, mixed tokens, repetition, requested and achieved ratio, formatted as `curation stats`,
    and a flag where the mix repeats a source's documents."""
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
                repetition_flag(s),
            ]
        )
    t = stats["totals"]
    # Kept documents, as per source: the mix counts a document once per repetition or piece.
    rows.append(["total", f"{t['kept_documents']:,}", f"{t['mixed_tokens']:,}", "", "", "", ""])
    return rows


def repetition_flag(s: dict[str, Any]) -> str:
    repetition = s.get("repetition", 0)
    if repetition > 1:
        return f"UPSAMPLED {repetition:.2f}x (max_repetition {s.get('max_repetition', 1):g})"
    return "" if repetition >= 0.999 else f"subsampled to {repetition:.1%}"


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


def sources_table(stats: dict[str, Any]) -> Table:
    rows = [
        [
            name,
            s.get("origin") or "not declared",
            ", ".join(s.get("license", [])) or "not declared",
            ", ".join(s.get("languages", [])) or "not declared",
            f"{s['kept_documents']:,}",
        ]
        for name, s in stats["sources"].items()
    ]
    return Table(
        "Sources",
        ["source", "origin", "licence", "languages", "documents kept"],
        rows,
        notes=[("Origins, licences and languages are as the manifest declares them for each source; each "
               "document keeps its own input file, line and URL in `provenance`.")],
    )


def _bin_label(lower: int) -> str:
    return "0" if lower == 0 else f"{lower:,}-{2 * lower - 1:,}"


def histogram_table(stats: dict[str, Any], kind: str) -> Table:
    """Documents per power-of-two length bin, per source and in all, in numeric order."""
    per_source = {name: dict(s.get("length_histograms", {}).get(kind, [])) for name, s in stats["sources"].items()}
    bins = sorted({b for h in per_source.values() for b in h})
    totals = [sum(h.get(b, 0) for h in per_source.values()) for b in bins]
    rows = [
        [_bin_label(b), *(f"{h.get(b, 0):,}" for h in per_source.values()), f"{total:,}"]
        for b, total in zip(bins, totals)
    ]
    return Table(
        f"Document length in {kind}",
        [f"{kind}", *per_source, "all"],
        rows,
        [(_bin_label(b), total) for b, total in zip(bins, totals)],
        notes=[(f"Kept documents by length in {kind} (a decontaminated document's pieces count as one), "
               "before the mix samples or repeats them.")],
    )


def edits_table(stats: dict[str, Any]) -> Table:
    rows = [
        [name, edit, f"{n:,}"] for name, s in stats["sources"].items() for edit, n in s.get("span_edits", {}).items()
    ]
    return Table(
        "Paragraph and span cuts",
        ["source", "cut by", "spans cut"],
        rows or [["none", "-", "0"]],
        notes=[("Spans removed from documents that were otherwise kept: repeated paragraphs (paragraph "
               "dedupe), matched benchmark text (decontamination with remove_span).")],
    )


def cluster_table(stats: dict[str, Any]) -> Table:
    # stats.json sorts its keys as text; sizes read in numeric order.
    sizes = sorted((int(size), n) for size, n in stats.get("dedupe_cluster_sizes", {}).items())
    return Table(
        "Dedup cluster sizes",
        ["cluster size", "clusters"],
        [[f"{size:,}", f"{n:,}"] for size, n in sizes] or [["no duplicate clusters", "0"]],
        [(str(size), n) for size, n in sizes] or None,
        notes=["Groups of duplicates (exact, URL or near-duplicate) of which one copy was kept."],
    )


def contamination_table(stats: dict[str, Any]) -> Table:
    checked = stats.get("contamination", {})
    rows = [
        [b, f"{c['items_matched']:,}", f"{c['documents_dropped']:,}", f"{c['documents_cut']:,}"]
        for b, c in checked.items()
    ]
    return Table(
        f"Decontamination ({stats.get('contamination_matches', 0):,} matches)",
        ["benchmark checked", "items matched", "documents dropped", "documents with spans cut"],
        rows or [["no benchmark checked", "-", "-", "-"]],
        notes=[("Every benchmark the run checked for n-gram overlap (verified along each item), including those where nothing matched; "
               "details per match are in decontamination/.")],
    )


def pii_table(stats: dict[str, Any]) -> Table:
    rows, unmasked = [], []
    for name, s in stats["sources"].items():
        masked = s.get("pii_masked", {})
        if not masked:
            unmasked.append(name)
            continue
        rows += [
            [name, *key.split("/", 1), f"{n:,}"] for key, n in masked.items() if key != "documents_masked"
        ]
        rows.append([name, "", "documents with a masked span", f"{masked.get('documents_masked', 0):,}"])
    notes = [("E-mail addresses, public IP addresses and phone numbers replaced by placeholders "
             "(`|||EMAIL_ADDRESS|||`, `|||IP_ADDRESS|||`, `|||PHONE_NUMBER|||`) in the kept documents; each masked "
             "span is listed by `curation audit`.")]
    if unmasked:
        notes.append(f"Not masked (no PII filter in their chain): {', '.join(unmasked)}.")
    return Table("PII handling", ["source", "filter", "masked", "count"], rows or [["none", "-", "-", "0"]], notes=notes)


def provenance_table(stats: dict[str, Any], lock: dict[str, Any], lock_sha256: str | None) -> Table:
    libraries = ", ".join(f"{k} {v}" for k, v in lock["libraries"].items() if v)
    inputs_bytes = sum(e["size"] for e in lock["inputs"])
    release = f"{stats['name']}/{stats['version']}"
    rows = [
        ["manifest", f"manifest.yaml in this release, sha256 {lock['manifest_sha256']}"],
        ["lock digest", f"{lock_digest(lock)} (sha256 of lock.json but its outputs and manifest_path)"],
        *([["lock.json sha256", lock_sha256]] if lock_sha256 else []),
        ["code version", f"curation {lock['code_version']} (Python {lock['python']})"],
        ["libraries", libraries],
        ["seeds", ", ".join(f"{k} {v}" for k, v in lock["seeds"].items())],
        ["inputs", f"{len(lock['inputs']):,} files, {inputs_bytes:,} bytes (sha256 of each in lock.json)"],
        ["tokenizer", f"{lock['tokenizer']['uri'].rsplit('/', 1)[-1]} sha256 {lock['tokenizer']['sha256']}"],
        *[["model", f"{e['uri'].rsplit('/', 1)[-1]} sha256 {e['sha256']}"] for e in lock["models"]],
        *[
            ["filter list", f"{'/'.join(e['uri'].rsplit('/', 2)[-2:])} sha256 {e['sha256']}"]
            for e in lock.get("filter_lists", [])
        ],
        *[["filter plugin", f"{e['filter']} from {e['distribution']} {e['version']}"] for e in lock.get("plugins", [])],
        *[["eval set", f"{e['uri'].rsplit('/', 1)[-1]} sha256 {e['sha256']}"] for e in lock["eval_sets"]],
    ]
    return Table(
        "Provenance and regeneration",
        ["what", "value"],
        rows,
        notes=[(f"In the folder holding `{stats['name']}/` (the manifest's output.path), this command checks every "
               "locked input by sha256, rebuilds the release and compares every output file with the lock "
               "(add `--input-root OLD=NEW` for inputs that moved):")],
        code=f"curation regenerate {release}/lock.json --verify",
    )


def usage_table(stats: dict[str, Any]) -> Table:
    release = f"{stats['name']}/{stats['version']}"
    return Table(
        "How to load",
        [],
        [],
        notes=[("Token shards (`shards/part-NNNNN.npy`, raw little-endian token ids, EOS between documents) are read "
               "by OLMo-core's NumpyFSLDataset. The curated documents (`documents/<source>/`, Dolma JSONL) load "
               "with Hugging Face `datasets` once exported:")],
        code=(f"curation export {release} --format hf {stats['name']}-hf\n"
              f"python -c \"import datasets; print(datasets.load_dataset('{stats['name']}-hf', split='train'))\""),
    )


def uses_table(stats: dict[str, Any]) -> Table:
    upsampled = [f"{name} ({s['repetition']:.2f}x)" for name, s in stats["sources"].items() if s.get("repetition", 0) > 1]
    notes = [
        "Intended use: pretraining and studying language models; the mix's proportions are those requested above.",
        ("Limitations: documents were filtered by heuristics and classifiers, not read by people; quality and "
        "language filters have known biases against dialects and informal text. PII masking is pattern-based "
        "and misses what its patterns do not describe (names, street addresses). Licences are per source as "
        "declared; follow each one when redistributing."),
    ]
    if upsampled:
        notes.append(f"The mix repeats documents of {', '.join(upsampled)}: a model sees them more than once per epoch.")
    return Table("Uses and limitations", [], [], notes=notes)


def card_tables(stats: dict[str, Any], lock: dict[str, Any], lock_sha256: str | None = None) -> list[Table]:
    tables = [
        sources_table(stats),
        usage_table(stats),
        Table(
            "Tokens per source",
            ["source", "kept docs", "mixed tokens", "repetition", "requested", "achieved", "flag"],
            mix_rows(stats),
            [(name, s.get("achieved_tokens", 0)) for name, s in stats["sources"].items()],
            notes=[("Repetition is mixed tokens over kept tokens: above 1 the mix repeats the source's documents. "
                    f"The mix holds {stats['totals']['mixed_documents']:,} documents, each counted once per "
                    "repetition or piece.")],
        ),
        histogram_table(stats, "characters"),
        histogram_table(stats, "tokens"),
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
    tables += [
        edits_table(stats),
        cluster_table(stats),
        contamination_table(stats),
        pii_table(stats),
        uses_table(stats),
        provenance_table(stats, lock, lock_sha256),
    ]
    return tables


def _summary(stats: dict[str, Any]) -> str:
    t = stats["totals"]
    return (
        f"Read {t['read']:,} documents from {t['files']:,} files; kept {t['kept_documents']:,}, rejected {t['rejected']:,}, "
        f"quarantined {t['quarantined']:,}. The mix holds {t['mixed_documents']:,} documents and {t['mixed_tokens']:,} tokens "
        f"in {len(stats['shards'])} shards."
    )


def _intro(stats: dict[str, Any]) -> list[str]:
    return [p for p in (stats.get("description", ""), _summary(stats)) if p]


def render_markdown(stats: dict[str, Any], tables: list[Table], header: dict[str, Any]) -> str:
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    out = ["---", front.rstrip("\n"), "---", "", f"# {stats['name']} {stats['version']}", ""]
    for paragraph in _intro(stats):
        out += [paragraph, ""]
    for table in tables:
        out += [f"## {table.title}", ""]
        for note in table.notes:
            out += [note, ""]
        if table.code:
            out += ["```bash", table.code, "```", ""]
        if table.header:
            out += ["| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
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
    "pre{background:#f4f4f4;padding:.5em;overflow-x:auto}"
)


def render_html(stats: dict[str, Any], tables: list[Table], header: dict[str, Any]) -> str:
    title = html.escape(f"{stats['name']} {stats['version']}")
    front = yaml.safe_dump(header, sort_keys=False, allow_unicode=True)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{title}</h1>",
        *(f"<p>{html.escape(p)}</p>" for p in _intro(stats)),
    ]
    for table in tables:
        out.append(f"<h2>{html.escape(table.title)}</h2>")
        out += [f"<p>{html.escape(note)}</p>" for note in table.notes]
        if table.code:
            out.append(f"<pre><code>{html.escape(table.code)}</code></pre>")
        if table.bars:
            out.append(f"<figure>{bar_chart_svg(table.bars)}</figure>")
        if table.header:
            out.append(
                "<table><thead><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in table.header)
                + "</tr></thead><tbody>"
            )
            out += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in table.rows]
            out.append("</tbody></table>")
    out += ["<h2>Hugging Face metadata</h2>", f'<pre id="hf-metadata"><code>{html.escape(front)}</code></pre>']
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def read_stats(root: str) -> dict[str, Any]:
    with storage.open_binary(storage.join(root, "stats.json")) as f:
        return orjson.loads(f.read())


def card_markdown(stats: dict[str, Any], lock: dict[str, Any], configs: list[dict[str, Any]], lock_sha256: str) -> str:
    """The card as a Hugging Face README.md over `configs`, naming the lock by its file's sha256."""
    return render_markdown(stats, card_tables(stats, lock, lock_sha256), metadata_header(stats, configs))


def write_card(root: str, lock: dict[str, Any]) -> tuple[str, str]:
    """Write root/card.md and root/card.html from root/stats.json and `lock`; returns their paths."""
    stats = read_stats(root)
    tables = card_tables(stats, lock)
    header = metadata_header(stats, release_configs(stats))
    paths = (storage.join(root, "card.md"), storage.join(root, "card.html"))
    for path, text in zip(paths, (render_markdown(stats, tables, header), render_html(stats, tables, header))):
        with storage.atomic_write(path) as f:
            f.write(text.encode())
    return paths
