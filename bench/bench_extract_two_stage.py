"""trafilatura on less than the whole page, tried for a default within a point of trafilatura at a third of
its time (issue #15 part 1): (a) trafilatura on the article's body container that resiliparse_body finds, (b)
resiliparse_body first and trafilatura on its container where a cheap signal says the text needs it, (c)
trafilatura on the page with what never holds an article removed by lexbor first. trafilatura runs with its
fast settings (no readability/jusText fallbacks) and without comments. Page sets, halves and columns are
bench/bench_extract_pruning.py's; settings were chosen on the tuning half only. By hand:

    taskset -c 0 python bench/bench_extract_two_stage.py
"""

from __future__ import annotations

import datetime
import html as html_entities
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_extract import two_stage_bound  # noqa: E402
from bench_extract_pruning import TABLE_HEAD, link_runs_pruned, measured, page_sets, table_row  # noqa: E402

from curation.readers.extract import (  # noqa: E402
    article_span,
    body_article,
    is_prose,
    page_title,
    resiliparse_body,
    stage_containers,
    trafilatura_precise,
)

# Elements that never hold an article's text, removed before trafilatura parses the page in design (c).
_NEVER_ARTICLE = "script, style, noscript, template, svg, iframe, form, nav, footer, aside"
# (b)'s trigger, chosen on the tuning half: at least this share of resiliparse_body's characters are in lines
# that are not prose (menus, bylines, share prompts and link lists left in the container).
_NON_PROSE_SHARE = 0.03
# (a) without resiliparse: a container qualifies when its text is at least this share of the body's text
# (lexbor's text of all descendants, scripts included), chosen on the tuning half.
_CONTAINER_TEXT_SHARE = 0.2


def trafilatura_fast(html: str) -> str:
    import trafilatura

    return trafilatura.extract(html, fast=True, include_comments=False, deduplicate=False) or ""


def container_page(tree, container) -> str:
    """The container as a page of its own, headed by the page's first <h1> when it does not hold it."""
    title = page_title(tree)
    heading = f"<h1>{html_entities.escape(title)}</h1>" if title and title not in container.text else ""
    return f"<html><body>{heading}{container.html}</body></html>"


def on_container(fallback_to_trafilatura: bool):
    """(a): trafilatura on resiliparse_body's container; where none qualifies, resiliparse_body's text or
    trafilatura on the whole page."""
    from resiliparse.parse.html import HTMLTree

    def extract(html: str) -> str:
        tree = HTMLTree.parse(html)
        text, container = body_article(tree)
        if container is not None:
            return trafilatura_fast(container_page(tree, container))
        return trafilatura_fast(html) if fallback_to_trafilatura else text

    return extract


def on_container_by_text_share(html: str) -> str:
    """(a) without resiliparse's two main-content passes: the first stage's container whose lexbor text is a
    large enough share of the body's; resiliparse_article's text where none is."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    for container in stage_containers(tree):
        if len(container.text) >= _CONTAINER_TEXT_SHARE * len(tree.body.text):
            return trafilatura_fast(container_page(tree, container))
    return article_span(extract_plain_text(tree, main_content=True, comments=False))


def body_then_trafilatura(without_container=None):
    """(b): resiliparse_body's text, or trafilatura on its container where enough of that text is not prose;
    `without_container(html)` where no container qualifies, if given."""
    from resiliparse.parse.html import HTMLTree

    def extract(html: str) -> str:
        tree = HTMLTree.parse(html)
        text, container = body_article(tree)
        if container is None:
            return without_container(html) if without_container else text
        non_prose = sum(len(line) for line in text.split("\n") if line.strip() and not is_prose(line))
        return (
            trafilatura_fast(container_page(tree, container))
            if non_prose >= _NON_PROSE_SHARE * len(text)
            else text
        )

    return extract


def pruned(html: str) -> str:
    """(c)'s page: the elements that never hold an article removed (lexbor), serialized again."""
    from resiliparse.parse.html import HTMLTree

    tree = HTMLTree.parse(html)
    for node in tree.document.query_selector_all(_NEVER_ARTICLE):
        node.decompose()
    return tree.document.html


CANDIDATES = {
    "`extractor: resiliparse_body`": resiliparse_body,
    "`extractor: trafilatura`": trafilatura_precise,
    "trafilatura `fast` (direct)": trafilatura_fast,
    "(a) trafilatura `fast` on resiliparse_body's container, resiliparse_body where none qualifies": on_container(
        False
    ),
    "(a) same, the container qualified by its lexbor text (>= 20% of the body's)": on_container_by_text_share,
    "(a) same as the first, trafilatura `fast` on the whole page where no container qualifies": on_container(
        True
    ),
    "(b) resiliparse_body; trafilatura `fast` on its container where >= 3% of its text is not prose lines": (
        body_then_trafilatura()
    ),
    "(b) same, link-dense line runs dropped where no container qualifies": body_then_trafilatura(
        link_runs_pruned
    ),
    "(c) trafilatura `fast` on the page pruned by lexbor (script, style, nav, footer, aside, form...)": lambda html: (
        trafilatura_fast(pruned(html))
    ),
}


def main() -> None:
    sets = page_sets()
    print(TABLE_HEAD)
    outputs = {}
    for label, fn in CANDIDATES.items():
        outputs[label] = measured(fn, sets)
        print(table_row(label, outputs[label], sets), flush=True)
    # (c) without the cost of pruning: what trafilatura gains from the smaller page alone
    prepruned = {name: [pruned(html) for html, _ in pages] for name, pages in sets.items()}
    by_page = {html: page for name, pages in sets.items() for (html, _), page in zip(pages, prepruned[name])}
    untimed = measured(lambda html: trafilatura_fast(by_page[html]), sets)
    print(table_row("(c) bound: the pruning done beforehand, not timed", untimed, sets))
    # (b) bounded from above: the trigger knowing which text scores higher
    fast, precise = (
        outputs["`extractor: resiliparse_body`"],
        outputs[next(k for k in CANDIDATES if "(a)" in k)],
    )
    bound = {
        name: two_stage_bound(fast[name], precise[name], [t for _, t in pages])
        for name, pages in sets.items()
    }
    print(table_row("(b) bound: trafilatura on the container where it scores higher", bound, sets))
    print(f"{datetime.date.today()}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
