"""Boilerplate pruning on resiliparse's output, tried for a default within a point of trafilatura (issue #15
part 1): each candidate's snippet F1 on the two halves of trafilatura's evaluation pages (sorted by file
name; even indexes were the tuning half, odd ones held out), token F1 on Mozilla Readability's test pages,
and CPU pages/s per core over all pages. Page sets and metrics are bench/bench_extract.py's. By hand:

    taskset -c 0 python bench/bench_extract_pruning.py
"""

from __future__ import annotations

import datetime
import html as html_entities
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract import readability_pages, snippet_scores, timed, token_scores, trafilatura_pages  # noqa: E402

from curation.readers.extract import (  # noqa: E402
    article_span,
    is_prose,
    resiliparse_article,
    resiliparse_body,
    trafilatura_precise,
)

# trafilatura's OVERALL_DISCARD_XPATH class/id vocabulary (xpaths.py, 2.3.1), as CSS selectors on the
# container tags it prunes
_DISCARD_TOKENS = (
    "share", "social", "viral", "newsletter", "syndication", "tags", "sidebar", "banner", "breadcrumb", "button",
    "author", "footer", "nav", "menu", "related", "premium", "widget", "byline", "embed", "consent", "teaser",
    "outbrain", "taboola", "most-popular", "more-on", "rating", "timestamp", "overlay", "slide", "-stories",
)  # fmt: skip
_DISCARD_SELECTORS = [
    f'{tag}[{attribute}*="{token}"]'
    for token in _DISCARD_TOKENS
    for attribute in ("class", "id")
    for tag in ("div", "section", "aside", "ul", "ol", "span", "p")
]
_TAG = re.compile(r"<(/?)([a-z0-9]+)[^>]*>")


def _main_content(html: str, **options) -> str:
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True, comments=False, **options)


def class_pruned(html: str) -> str:
    return article_span(_main_content(html, skip_elements=_DISCARD_SELECTORS))


def without_post_meta(html: str) -> str:
    return article_span(_main_content(html, post_meta=False))


def prose_segments(html: str, tail_only: bool, gap: int = 2, share: float = 0.05) -> str:
    """Prose lines grouped into segments where more than `gap` non-blank other lines part them; from the
    largest segment, neighbours with at least `share` of its prose are kept as far as the first smaller one
    (after it only, with `tail_only`); the text runs from the line before the first kept prose line."""
    lines = _main_content(html).split("\n")
    prose = [i for i, line in enumerate(lines) if is_prose(line)]
    if not prose:
        return "\n".join(lines)
    segments = [[prose[0]]]
    for before, after in zip(prose, prose[1:]):
        if sum(1 for line in lines[before + 1 : after] if line.strip()) > gap:
            segments.append([])
        segments[-1].append(after)
    weights = [sum(len(lines[i]) for i in segment) for segment in segments]
    large = [weight >= share * max(weights) for weight in weights]
    first = last = weights.index(max(weights))
    while last + 1 < len(segments) and large[last + 1]:
        last += 1
    while first > 0 and (tail_only or large[first - 1]):
        first -= 1
    after_previous = segments[first - 1][-1] + 1 if first else 0
    return article_span("\n".join(lines[after_previous : segments[last][-1] + 1]))


def _lines_with_link_share(markup: str) -> list[tuple[str, float]]:
    """resiliparse's minimal-HTML output as text lines, each with the share of its characters inside links
    (anchors without a target are not links)."""
    lines, in_link = [], False
    for raw in markup.split("\n"):
        parts, linked, position = [], 0, 0
        for tag in _TAG.finditer(raw + "<end>"):
            text = raw[position : tag.start()]
            parts.append(text)
            linked += len(text.strip()) if in_link else 0
            if tag.group(2) == "a":
                in_link = not tag.group(1) and 'href=""' not in tag.group(0)
            elif tag.group(2) == "li" and not tag.group(1):
                parts.append("• ")
            position = tag.end()
        text = html_entities.unescape("".join(parts))
        if text.strip() or not _TAG.search(raw):
            lines.append((text, linked / max(1, len(text.strip()))))
    return lines


def link_runs_pruned(html: str, link_dense: float = 0.5, share: float = 0.3) -> str:
    """Runs of non-prose lines of which at least `share` are mostly link text are dropped; link-dense prose
    (teaser lists) does not count as prose."""
    lines = _lines_with_link_share(_main_content(html, preserve_formatting="minimal_html", links=True))
    prose = [is_prose(text) and density <= link_dense for text, density in lines]
    kept, run = [], []
    for (text, density), is_article in zip(lines + [("", 0.0)], prose + [True]):
        if not is_article:
            run.append((text, density))
            continue
        members = [d for t, d in run if t.strip()]
        if not members or sum(d > link_dense for d in members) < share * len(members):
            kept.extend(t for t, _ in run)
        kept.append(text)
        run = []
    return article_span("\n".join(kept[:-1]))


CANDIDATES = {
    "extractor: resiliparse_article (the default)": resiliparse_article,
    "+ trafilatura's class/id vocabulary as skip_elements": class_pruned,
    "+ post_meta=False": without_post_meta,
    "+ cut after the largest prose segment (gap 2 lines, 5% of it)": lambda html: prose_segments(html, True),
    "+ cut around the largest prose segment (gap 2 lines, 5% of it)": lambda html: prose_segments(
        html, False
    ),
    "+ link-dense line runs dropped (minimal_html, links)": link_runs_pruned,
    "extractor: resiliparse_body (the article's body container, as trafilatura finds it)": resiliparse_body,
    "extractor: trafilatura": trafilatura_precise,
}


def page_sets() -> dict[str, list]:
    """trafilatura's pages in two halves (sorted by file name: even indexes to tune on, odd ones held out),
    then Readability's pages."""
    pages = sorted(trafilatura_pages(), key=lambda page: page[1]["file"])
    return {"tuning half": pages[0::2], "held-out half": pages[1::2], "readability": readability_pages()}


def measured(fn, sets: dict[str, list]) -> dict[str, tuple[list[str], list[float]]]:
    """Each set's texts and CPU seconds per page."""
    return {name: timed(fn, [html for html, _ in pages]) for name, pages in sets.items()}


def table_row(label: str, outputs: dict[str, tuple[list[str], list[float]]], sets: dict[str, list]) -> str:
    cells, texts_both, pages_both = [], [], []
    for name, pages in sets.items():
        texts = outputs[name][0]
        if name == "readability":
            cells.append(f"{token_scores(texts, pages)['f1']:.3f}")
            continue
        scores = snippet_scores(texts, pages)
        cells.append(f"{scores['f1']:.3f} ({scores['precision']:.3f} / {scores['recall']:.3f})")
        texts_both, pages_both = texts_both + texts, pages_both + pages
    cells.insert(2, f"{snippet_scores(texts_both, pages_both)['f1']:.3f}")
    pages_per_second = sum(map(len, sets.values())) / sum(sum(seconds) for _, seconds in outputs.values())
    return f"| {label} | {' | '.join(cells)} | {pages_per_second:.0f} |"


TABLE_HEAD = (
    "| candidate | tuning half F1 (P / R) | held-out half F1 (P / R) | both halves F1 | readability token F1 "
    "| pages/s per core |\n|---|---|---|---|---|---|"
)


def main() -> None:
    sets = page_sets()
    print(TABLE_HEAD)
    for label, fn in CANDIDATES.items():
        print(table_row(label, measured(fn, sets), sets), flush=True)
    print(f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
