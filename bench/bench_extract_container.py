"""trafilatura on the article's container found in one lxml parse, tried for a default within a point of
trafilatura at a third of its time (issue #15 part 1). Design (a) of bench/bench_extract_two_stage.py finds the
container with lexbor and qualifies it with two resiliparse passes, then serializes it for trafilatura to
parse again; here the page is parsed once, by lxml with trafilatura's own parser, the container is the first
match of resiliparse_body's class/id stages (the same names, as regular expressions on the attributes) holding
a large enough share of the page's paragraph text, and trafilatura `fast` reads that subtree, its options
built once. Where no container qualifies, the pages the class/id names miss: resiliparse_article's text,
the same with link-dense line runs dropped (bench/bench_extract_pruning.py), trafilatura on the whole page,
or trafilatura on the element Readability's scoring picks (each paragraph's
score to its parent, half to its grandparent). Page sets, halves and columns are
bench/bench_extract_pruning.py's; settings were chosen on the tuning half only. By hand:

    taskset -c 0 python bench/bench_extract_container.py
"""

from __future__ import annotations

import datetime
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract_pruning import TABLE_HEAD, link_runs_pruned, measured, page_sets, table_row  # noqa: E402
from bench_extract_two_stage import on_container  # noqa: E402

from curation.readers.extract import (  # noqa: E402
    _ARTICLE_TEXT,
    _MAIN_CONTENT,
    _STORY,
    resiliparse_article,
    resiliparse_body,
    trafilatura_precise,
)

# A container qualifies when it holds at least this share of the page's paragraph text (chosen on the tuning
# half: 0.15, 0.3 and 0.5 score the same there, within 0.1 point).
_PARAGRAPH_SHARE = 0.3
# Readability's scoring: paragraphs this short do not count.
_MIN_PARAGRAPH_CHARS = 25
_CONDITION = re.compile(r'\[(\w+)([*^]?)="([^"]+)"\]')


def attribute_patterns(conditions: list[str]) -> dict[str, re.Pattern]:
    """resiliparse_body's CSS attribute conditions of one stage as one regular expression per attribute."""
    by_attribute: dict[str, list[str]] = {}
    for condition in conditions:
        attribute, operator, value = _CONDITION.fullmatch(condition).groups()
        anchored = {"": f"^{re.escape(value)}$", "*": re.escape(value), "^": f"^{re.escape(value)}"}[operator]
        by_attribute.setdefault(attribute, []).append(anchored)
    return {attribute: re.compile("|".join(patterns)) for attribute, patterns in by_attribute.items()}


# resiliparse_body's stages; None is the stage of the <article> element itself
_STAGES = [
    attribute_patterns(_ARTICLE_TEXT),
    None,
    attribute_patterns(_STORY),
    attribute_patterns(_MAIN_CONTENT),
]


def _matches(element, stage) -> bool:
    if stage is None:
        return element.tag == "article"
    return any(
        (value := element.get(attribute)) is not None and pattern.search(value)
        for attribute, pattern in stage.items()
    )


def stage_containers(tree):
    """Each stage's first match in document order, stage by stage, in one walk over the container tags that
    stops as soon as the stage asked for is settled."""
    body = tree.find("body")
    if body is None:
        return
    first, settled = [None] * len(_STAGES), 0
    for element in body.iter("article", "div", "main", "section"):
        for stage in range(settled, len(_STAGES)):
            if first[stage] is None and _matches(element, _STAGES[stage]):
                first[stage] = element
        while settled < len(_STAGES) and first[settled] is not None:
            yield first[settled]
            settled += 1
    yield from (element for element in first[settled:] if element is not None)


def paragraph_chars(element) -> int:
    return sum(len(text) for text in element.xpath(".//p//text()"))


def qualifying_container(tree):
    """The first stage's container holding at least `_PARAGRAPH_SHARE` of the page's paragraph text, or None."""
    least = max(1, _PARAGRAPH_SHARE * paragraph_chars(tree))
    return next((c for c in stage_containers(tree) if paragraph_chars(c) >= least), None)


def parsed(html: str):
    """The page parsed as trafilatura parses it (its lxml parser, from UTF-8), or None if there is nothing."""
    import lxml.html
    from lxml import etree
    from trafilatura.utils import HTML_PARSER

    try:
        return lxml.html.document_fromstring(html.encode("utf-8", "replace"), parser=HTML_PARSER)
    except etree.ParserError:
        return None


def first_heading(tree) -> str:
    heading = tree.find(".//h1")
    return heading.text_content().strip() if heading is not None else ""


def as_page(container, title: str):
    """The container moved under a page of its own, headed by the page's first <h1> when it lacks it."""
    import lxml.html

    page = lxml.html.Element("html")
    body = lxml.html.Element("body")
    page.append(body)
    if title and title not in container.text_content():
        heading = lxml.html.Element("h1")
        heading.text = title
        body.append(heading)
    body.append(container)
    return page


def readability_candidate(tree):
    """The element Readability's scoring picks: each paragraph's score (1, its commas, a point per 100
    characters up to 3) to its parent, half of it to its grandparent; None without paragraphs."""
    scores: dict = {}
    for paragraph in tree.iter("p", "pre", "td"):
        text = paragraph.text_content()
        parent = paragraph.getparent()
        if len(text) < _MIN_PARAGRAPH_CHARS or parent is None:
            continue
        score = 1 + text.count(",") + min(len(text) // 100, 3)
        scores[parent] = scores.get(parent, 0) + score
        if parent.getparent() is not None:
            scores[parent.getparent()] = scores.get(parent.getparent(), 0) + score / 2
    return max(scores, key=scores.get) if scores else None


def fast_options():
    """trafilatura's `fast` settings without comments, built once for all pages."""
    from trafilatura.settings import Extractor

    return Extractor(fast=True, comments=False, dedup=False)


def trafilatura_on(tree, container, options) -> str:
    """trafilatura on the container moved under a page of its own, or on the whole tree without one."""
    import trafilatura

    page = tree if container is None else as_page(container, first_heading(tree))
    return trafilatura.extract(page, options=options) or ""


def on_lxml_container(without_container: str):
    """(d): trafilatura `fast` on the qualifying container; where none qualifies, by `without_container`:
    "resiliparse" (resiliparse_article), "link runs" (the same with link-dense line runs dropped),
    "trafilatura" (on the whole page) or "readability" (on its candidate)."""
    options = fast_options()

    def extract(html: str) -> str:
        tree = parsed(html)
        if tree is None:
            return resiliparse_article(html)
        container = qualifying_container(tree)
        if container is None and without_container == "readability":
            container = readability_candidate(tree)
        if container is not None or without_container == "trafilatura":
            return trafilatura_on(tree, container, options)
        return link_runs_pruned(html) if without_container == "link runs" else resiliparse_article(html)

    return extract


CANDIDATES = {
    "`extractor: trafilatura`": trafilatura_precise,
    "`extractor: resiliparse_body`": resiliparse_body,
    "(a) trafilatura `fast` on resiliparse_body's container, resiliparse_body where none qualifies": on_container(
        False
    ),
    "(d) trafilatura `fast` on the container found in one lxml parse, resiliparse_article where none qualifies": (
        on_lxml_container("resiliparse")
    ),
    "(d) same, link-dense line runs dropped where none qualifies": on_lxml_container("link runs"),
    "(d) same, trafilatura `fast` on Readability's candidate where none qualifies": on_lxml_container(
        "readability"
    ),
    "(d) same, trafilatura `fast` on the whole page where none qualifies": on_lxml_container("trafilatura"),
}


def main() -> None:
    sets = page_sets()
    print(TABLE_HEAD)
    for label, fn in CANDIDATES.items():
        print(table_row(label, measured(fn, sets), sets), flush=True)
    for name, pages in sets.items():
        trees = (parsed(html) for html, _ in pages)
        missed = sum(tree is None or qualifying_container(tree) is None for tree in trees)
        print(f"{name}: {missed} of {len(pages)} pages without a qualifying container")
    print(f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
