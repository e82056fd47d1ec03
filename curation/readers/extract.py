"""HTML-to-text extractors for WARC responses, chosen by name (a source's `extractor`); the reader runs them
in an isolated child process (curation.readers.extract_isolated). Measured in bench/bench_extract.py."""

from __future__ import annotations

import importlib
import importlib.metadata
import re
from dataclasses import dataclass

from curation.errors import CurationError


@dataclass(frozen=True)
class Extractor:
    """An extractor: its function, as "module:function" so the child process imports it itself, and the
    distributions its output depends on, whose versions the lock and the pool digests record."""

    function: str
    libraries: tuple[str, ...]


# The default, `resiliparse_article`, was chosen by bench/bench_extract.py (BENCHMARKS.md): trafilatura scores higher
# on its own evaluation pages but costs ~12x the CPU time, and no mix of the two comes within a point of it
# at a third of its cost.
EXTRACTORS = {
    "resiliparse_article": Extractor("curation.readers.extract:resiliparse_article", ("resiliparse",)),
    # The name keeps meaning what it meant before 0.2, so a manifest that names it extracts the same text.
    "resiliparse": Extractor("curation.readers.extract:resiliparse_main_content", ("resiliparse",)),
    "resiliparse_body": Extractor("curation.readers.extract:resiliparse_body", ("resiliparse",)),
    "trafilatura": Extractor("curation.readers.extract:trafilatura_precise", ("trafilatura", "lxml")),
}

# A line that reads as prose: long, and ending as a sentence does (in scripts with or without spaces).
_PROSE_MIN_CHARS = 40
_SENTENCE_END = re.compile(r"[.!?:;\"”»)…。！？」]\s*$")
# A line this long is prose however it ends (a paragraph cut by markup).
_LONG_LINE_CHARS = 100

# Where trafilatura looks for an article's body (xpaths.BODY_XPATH in 2.3.1), stage by stage, as CSS: the
# class and id names of article text, then <article>, then story names, then the page's main content.
_ARTICLE_TEXT = (
    ['[itemprop="articleBody"]', '[class="post"]', '[class="entry"]', '[id="articleContent"]']
    + [f'[class*="{name}"]' for name in (
        "entry-content", "article-content", "art-content", "article__content", "article-body", "article__body",
        "articleBody", "articlebody", "post-text", "post_text", "post-body", "post-entry", "postentry",
        "post-content", "post_content", "postcontent", "postContent", "post_inner_wrapper", "article-text",
        "articletext", "articleText", "page-content", "text-content", "ArticleContent", "body-text",
        "article__container",
    )]
    + [f'[id*="{name}"]' for name in (
        "entry-content", "article-content", "art-content", "article__content", "article-body", "article__body",
        "articlebody", "articleBody", "body-text",
    )]
)  # fmt: skip
_STORY = (
    ['[role="article"]', '[id="article"]', '[id="story"]', '[id^="primary"]', '[id*="story-body"]']
    + ['[class="postarea"]', '[class="art-postcontent"]', '[class="text"]', '[class="story"]']
    + [f'[class*="{name}"]' for name in (
        "fulltext", "post-bodycopy", "story-content", "storycontent", "theme-content", "blog-content",
        "section-content", "single-content", "single-post", "main-column", "wpb_text_column", "story-body",
        "field-body",
    )]
)  # fmt: skip
_MAIN_CONTENT = ['[id="content"]', '[class="content"]'] + [
    f'[{attribute}*="{name}"]'
    for attribute in ("class", "id")
    for name in ("content-main", "content_main", "content-body", "content__body", "contentBody", "main-content")
]  # fmt: skip


def _on_container_tags(conditions: list[str]) -> str:
    return ", ".join(
        f"{tag}{condition}" for condition in conditions for tag in ("article", "div", "main", "section")
    )


_BODY_SELECTORS = (
    _on_container_tags(_ARTICLE_TEXT),
    "article",
    _on_container_tags(_STORY),
    _on_container_tags(_MAIN_CONTENT),
)
# A body container holding less than this share of the page's main content is a teaser or a fragment.
_BODY_MIN_SHARE = 0.5


def resiliparse_main_content(html: str) -> str:
    """resiliparse's main-content heuristics as they are (the default before 0.2's extraction benchmark)."""
    from resiliparse.extract.html2text import extract_plain_text

    return extract_plain_text(html, main_content=True)


def resiliparse_article(html: str) -> str:
    """resiliparse's main content without comment sections, cut to its prose: from the line before the first
    prose line (a title or heading) to the last prose line. What resiliparse keeps around an article is
    mostly short lines at either end (navigation, dates, share and newsletter prompts, related links)."""
    from resiliparse.extract.html2text import extract_plain_text

    return article_span(extract_plain_text(html, main_content=True, comments=False))


def is_prose(line: str) -> bool:
    return len(line) >= _LONG_LINE_CHARS or (
        len(line) >= _PROSE_MIN_CHARS and _SENTENCE_END.search(line) is not None
    )


def resiliparse_body(html: str) -> str:
    """resiliparse_article on the article's body container (body_container), headed by the page's first <h1>
    when the container does not hold it; on the whole page when no container qualifies. Better on both page
    sets than resiliparse_article, at about twice its time (bench/bench_extract.py, BENCHMARKS.md)."""
    from resiliparse.parse.html import HTMLTree

    return body_article(HTMLTree.parse(html))[0]


def body_article(tree) -> tuple[str, object]:
    """resiliparse_body's text of a parsed page, and the body container it read (None for the whole page)."""
    from resiliparse.extract.html2text import extract_plain_text

    whole = extract_plain_text(tree, main_content=True, comments=False)
    container, text = body_container(tree, whole)
    if container is None:
        return article_span(whole), None
    title = page_title(tree)
    return article_span(f"{title}\n\n{text}" if title and title not in text else text), container


def body_container(tree, whole: str):
    """The article's body container, found as trafilatura finds it: the first stage's match that holds at
    least `_BODY_MIN_SHARE` of `whole`, the page's main content; with its main content, or (None, "")."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    for container in stage_containers(tree):
        # extract_plain_text takes a whole tree, not a node
        text = extract_plain_text(HTMLTree.parse(container.html), main_content=True, comments=False)
        if text and len(text) >= _BODY_MIN_SHARE * len(whole):
            return container, text
    return None, ""


def stage_containers(tree):
    """For each stage of trafilatura's body selectors in turn, its first match in the page's body."""
    page = tree.body
    for selector in _BODY_SELECTORS if page is not None else ():
        container = page.query_selector(selector)
        if container is not None:
            yield container


def page_title(tree) -> str:
    """The text of the page's first <h1>, or ""."""
    heading = tree.body.query_selector("h1") if tree.body is not None else None
    return heading.text.strip() if heading is not None else ""


def article_span(text: str) -> str:
    lines = text.split("\n")
    prose = [i for i, line in enumerate(lines) if is_prose(line)]
    if not prose:  # a page of short lines (a list, a form, verse) is kept whole
        return text
    first = prose[0]
    heading = next((i for i in range(first - 1, -1, -1) if lines[i].strip()), first)
    return "\n".join(lines[heading : prose[-1] + 1])


def trafilatura_precise(html: str) -> str:
    import trafilatura

    # deduplicate stays off: trafilatura's cache of seen segments would make a page's text depend on the
    # pages its worker saw before it.
    return trafilatura.extract(html, favor_precision=True, include_comments=False, deduplicate=False) or ""


def identity(name: str) -> dict[str, object]:
    """What extractor `name`'s output depends on: its function and the installed version of each library."""
    spec = EXTRACTORS[name]
    versions = {}
    for distribution in spec.libraries:
        try:
            versions[distribution] = importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            versions[distribution] = None
    return {"extractor": name, "function": spec.function, "libraries": versions}


def extractor(name: str):
    """The function of extractor `name`, in this process; a one-line error if a library it needs is missing."""
    for distribution, version in identity(name)["libraries"].items():
        if version is None:
            raise CurationError(
                f"extractor {name!r} needs the Python package {distribution!r} (pip install {distribution})"
            )
    return _resolved(EXTRACTORS[name].function)


def _resolved(reference: str):
    module, function = reference.split(":")
    return getattr(importlib.import_module(module), function)
