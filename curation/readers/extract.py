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
    "trafilatura": Extractor("curation.readers.extract:trafilatura_precise", ("trafilatura", "lxml")),
}

# A line that reads as prose: long, and ending as a sentence does (in scripts with or without spaces).
_PROSE_MIN_CHARS = 40
_SENTENCE_END = re.compile(r"[.!?:;\"”»)…。！？」]\s*$")
# A line this long is prose however it ends (a paragraph cut by markup).
_LONG_LINE_CHARS = 100


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


def article_span(text: str) -> str:
    lines = text.split("\n")
    prose = [
        i
        for i, line in enumerate(lines)
        if len(line) >= _LONG_LINE_CHARS or (len(line) >= _PROSE_MIN_CHARS and _SENTENCE_END.search(line))
    ]
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
