"""HTML extraction quality and cost (issue #15 part 1) on two public page sets with ground truth:
trafilatura's evaluation pages (evaldata.json: snippets each page's extract must / must not contain; the
benchmark's own metric, as in trafilatura's tests/comparison.py: precision, recall, accuracy and F-score
over snippet counts; 884 of its 990 items have their page in the tarball) and Mozilla Readability's test pages (token F1 against expected.html's text, per page,
averaged). Each extractor the pipeline can be configured with runs as the reader calls it, in process;
resiliparse and trafilatura also run directly, with their own defaults and with the settings tried as
candidates for the default. Cost is CPU seconds of this process per page (robust to other jobs on the
machine), so pages/s is per core; the pipeline's isolated child process is timed separately, in wall time.
A two-stage design (the fast extractor everywhere, the precise one where the page needs it) is bounded from
above by an oracle trigger: trafilatura on exactly the pages where it scores higher.

Pages are decoded as the WARC reader decodes a payload (resiliparse's encoding detection), the same for all.
The sets are tarballs in ../shared/corpora/html, unpacked under the temp folder. By hand:

    taskset -c 0 python bench/bench_extract.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from curation.readers import extract  # noqa: E402
from curation.readers.extract_isolated import IsolatedExtractor  # noqa: E402

SHARED_HTML = REPO.parent / "shared" / "corpora" / "html"
BENCHMARKS = REPO / "BENCHMARKS.md"
_WORD = re.compile(r"\w+")


def unpacked(tarball: str) -> Path:
    folder = Path(tempfile.gettempdir()) / "curation-bench-extract" / tarball.removesuffix(".tar.gz")
    if not folder.exists():
        folder.mkdir(parents=True)
        with tarfile.open(SHARED_HTML / tarball) as tar:
            tar.extractall(folder, filter="data")
    return folder


def decoded(path: Path) -> str:
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    body = path.read_bytes()
    return bytes_to_str(body, detect_encoding(body))


def trafilatura_pages() -> list[tuple[str, dict]]:
    """(html, item) for each evaldata.json item whose page is in the tarball (884 of 990)."""
    folder = unpacked("trafilatura-eval-html.tar.gz")
    items = json.loads((folder / "evaldata.json").read_text())
    return [
        (decoded(folder / "eval" / item["file"]), item)
        for item in items.values()
        if (folder / "eval" / item["file"]).exists()
    ]


def readability_pages() -> list[tuple[str, str]]:
    """(html, expected text) per test page."""
    import lxml.html

    folder = unpacked("mozilla-readability-test-pages.tar.gz") / "test-pages"
    return [
        (
            decoded(page / "source.html"),
            lxml.html.fromstring((page / "expected.html").read_bytes()).text_content(),
        )
        for page in sorted(folder.iterdir())
    ]


def snippet_scores(results: list[str], pages: list[tuple[str, dict]]) -> dict[str, float]:
    tp = fn = fp = tn = 0
    for text, (_, item) in zip(results, pages):
        found_with = sum(snippet in text for snippet in item["with"])
        found_without = sum(snippet in text for snippet in item["without"])
        tp, fn = tp + found_with, fn + len(item["with"]) - found_with
        fp, tn = fp + found_without, tn + len(item["without"]) - found_without
    return {
        "precision": tp / (tp + fp),
        "recall": tp / (tp + fn),
        "accuracy": (tp + tn) / (tp + tn + fp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
    }


def token_f1(text: str, expected: str) -> tuple[float, float, float]:
    got, want = Counter(_WORD.findall(text.lower())), Counter(_WORD.findall(expected.lower()))
    common = sum((got & want).values())
    if not common:
        return 0.0, 0.0, 0.0
    precision, recall = common / sum(got.values()), common / sum(want.values())
    return precision, recall, 2 * precision * recall / (precision + recall)


def token_scores(results: list[str], pages: list[tuple[str, str]]) -> dict[str, float]:
    per_page = [token_f1(text, expected) for text, (_, expected) in zip(results, pages)]
    return {
        name: statistics.fmean(s[i] for s in per_page) for i, name in enumerate(("precision", "recall", "f1"))
    }


def direct_extractors() -> dict[str, Callable[[str], str | None]]:
    """The libraries called directly: their defaults, and the settings tried for the default."""
    import trafilatura
    from resiliparse.extract.html2text import extract_plain_text

    return {
        "resiliparse main_content (direct)": lambda html: extract_plain_text(html, main_content=True),
        "resiliparse main_content, comments=False (direct)": lambda html: extract_plain_text(
            html, main_content=True, comments=False
        ),
        "trafilatura defaults (direct)": lambda html: trafilatura.extract(html),
        "trafilatura fast, include_comments=False (direct)": lambda html: trafilatura.extract(
            html, fast=True, include_comments=False
        ),
        "trafilatura fast, favor_precision, include_comments=False (direct)": lambda html: (
            trafilatura.extract(html, fast=True, favor_precision=True, include_comments=False)
        ),
    }


def configured_extractors() -> dict[str, Callable[[str], str | None]]:
    return {f"extractor: {name}": extract.extractor(name) for name in extract.EXTRACTORS}


def timed(fn: Callable[[str], str | None], htmls: list[str]) -> tuple[list[str], list[float]]:
    """Each page's text and CPU seconds."""
    texts, seconds = [], []
    for html in htmls:
        start = time.process_time()
        texts.append(fn(html) or "")
        seconds.append(time.process_time() - start)
    return texts, seconds


def row(label: str, texts: list[str], seconds: list[float], traf: list, read: list) -> dict:
    return {
        "extractor": label,
        "trafilatura_eval": snippet_scores(texts[: len(traf)], traf),
        "readability": token_scores(texts[len(traf) :], read),
        "pages": len(texts),
        "cpu_seconds": sum(seconds),
        "slowest_page_cpu_seconds": max(seconds),
    }


def page_score(text: str, truth) -> float:
    """One page's score: snippets found minus unwanted snippets found, or token F1."""
    if isinstance(truth, dict):
        return sum(s in text for s in truth["with"]) - sum(s in text for s in truth["without"])
    return token_f1(text, truth)[2]


def two_stage_bound(
    fast: tuple[list[str], list[float]], precise: tuple[list[str], list[float]], truths
) -> tuple:
    """The best any two-stage design can do: the fast extractor on every page, the precise one on exactly the
    pages where its text scores higher (as if the trigger knew the answer)."""
    texts, seconds = list(fast[0]), list(fast[1])
    for i, truth in enumerate(truths):
        if page_score(precise[0][i], truth) > page_score(fast[0][i], truth):
            texts[i], seconds[i] = precise[0][i], seconds[i] + precise[1][i]
    return texts, seconds


def isolated_overhead(name: str, htmls: list[str]) -> tuple[float, float]:
    """Wall seconds for the pages in process, and through the reader's isolated child (started beforehand)."""
    fn = extract.extractor(name)
    start = time.perf_counter()
    for html in htmls:
        fn(html)
    in_process = time.perf_counter() - start
    with IsolatedExtractor(name) as isolated:
        isolated.extract("<p>warm up</p>")
        start = time.perf_counter()
        for html in htmls:
            isolated.extract(html)
        return in_process, time.perf_counter() - start


def measure(only: list[str]) -> list[dict]:
    traf, read = trafilatura_pages(), readability_pages()
    htmls = [html for html, _ in traf + read]
    truths = [truth for _, truth in traf + read]
    extractors = {**configured_extractors(), **direct_extractors()}
    rows, outputs = [], {}
    for label, fn in extractors.items():
        if only and not any(o in label for o in only):
            continue
        outputs[label] = timed(fn, htmls)
        rows.append(row(label, *outputs[label], traf, read))
        print(json.dumps(rows[-1]), flush=True)
    fast, precise = "extractor: resiliparse_article", "extractor: trafilatura"
    if fast in outputs and precise in outputs:
        bound = two_stage_bound(outputs[fast], outputs[precise], truths)
        rows.append(
            row("two-stage bound: resiliparse, then trafilatura where it scores higher", *bound, traf, read)
        )
        print(json.dumps(rows[-1]), flush=True)
        in_process, isolated = isolated_overhead("resiliparse_article", htmls)
        print(
            f"resiliparse on {len(htmls)} pages, wall s: in process {in_process:.2f}, isolated {isolated:.2f}"
        )
    return rows


def table(rows: list[dict]) -> str:
    lines = [
        "| extractor | trafilatura eval F1 | P | R | accuracy | readability token F1 | P | R | pages/s per core |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        t, r = row["trafilatura_eval"], row["readability"]
        lines.append(
            f"| {row['extractor']} | {t['f1']:.3f} | {t['precision']:.3f} | {t['recall']:.3f} | {t['accuracy']:.3f} "
            f"| {r['f1']:.3f} | {r['precision']:.3f} | {r['recall']:.3f} | {row['pages'] / row['cpu_seconds']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="extractors whose label contains one of these")
    args = parser.parse_args()
    rows = measure(args.only)
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line), "?")
    print(f"{datetime.date.today()}, {os.cpu_count()} cores ({model}), load average {os.getloadavg()[0]:.1f}")
    print(table(rows))


if __name__ == "__main__":
    main()
