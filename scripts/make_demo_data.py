"""Rebuild data/demo/ from ../shared: small, permissively licensed real samples for the demo and core tests.

Deterministic (fixed selections, no randomness), so the shipped files can be regenerated and checked.
Origins and licences are recorded in data/README.md.
"""

from __future__ import annotations

import gzip
import io
import json
import re
import shutil
import sys
from pathlib import Path

import zstandard

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
OUT = REPO / "data" / "demo"
PERMISSIVE = {"Apache-2.0", "MIT", "BSD-3-Clause", "BSD-2-Clause"}


def write_jsonl_zst(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path.write_bytes(zstandard.ZstdCompressor(level=19).compress(raw))


def write_jsonl_gz(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode())
    path.write_bytes(buf.getvalue())


def read_jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def wikitext_articles(path: Path, limit: int) -> list[dict]:
    """WikiText-2 articles (`= Title =` headers) as documents, undoing its tokenization of @-@ etc."""
    articles, title, lines = [], None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r" = ([^=].*[^=]) = ", line)
        if m:
            if title and lines:
                articles.append((title, lines))
            title, lines = m.group(1).strip(), []
        elif title is not None and line.strip():
            text = line.strip().replace(" @-@ ", "-").replace(" @,@ ", ",").replace(" @.@ ", ".")
            text = re.sub(r"^= = (.*) = =$", r"\1", text)
            lines.append(text)
    if title and lines:
        articles.append((title, lines))
    return [
        {"id": f"wikitext-2-valid-{i:04d}", "text": t + "\n\n" + "\n".join(ls), "title": t}
        for i, (t, ls) in enumerate(articles[:limit])
    ]


def main() -> int:
    if not SHARED.exists():
        print(f"{SHARED} not found: the demo data is built from ../shared", file=sys.stderr)
        return 1
    web = SHARED / "corpora" / "web"
    (OUT / "web").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(web / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", OUT / "web" / "cc-2019-30-00140.jsonl.gz")
    for i in (1, 2, 3):
        shutil.copyfile(web / f"c4-sample.0{i}.json.gz", OUT / "web" / f"c4-sample.0{i}.json.gz")
    (OUT / "warc").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHARED / "corpora" / "warc" / "sample-0000.warc.gz", OUT / "warc" / "sample-0000.warc.gz")

    code = [r for r in read_jsonl(SHARED / "corpora" / "code" / "github-permissive-sample.jsonl.gz") if r["license"] in PERMISSIVE]
    write_jsonl_zst(OUT / "code" / "github-permissive-00.jsonl.zst", code[:450])
    write_jsonl_zst(OUT / "code" / "github-permissive-01.jsonl.zst", code[450:900])

    gsm = read_jsonl(SHARED / "corpora" / "math" / "gsm8k-train.jsonl")[:1500]
    write_jsonl_gz(
        OUT / "math" / "gsm8k-train-head1500.jsonl.gz",
        [{"id": f"gsm8k-train-{i:05d}", "text": f"Question: {r['question']}\nAnswer: {r['answer']}"} for i, r in enumerate(gsm)],
    )
    books = read_jsonl(SHARED / "corpora" / "math" / "latex-math-books.jsonl.gz")
    write_jsonl_zst(OUT / "math" / "latex-math-books-head120.jsonl.zst", books[:120])

    arxiv = read_jsonl(SHARED / "corpora" / "science" / "arxiv-abstracts-clopezvice.jsonl.gz")[:1000]
    write_jsonl_gz(OUT / "papers" / "arxiv-abstracts-head1000.jsonl.gz", arxiv)

    wiki = wikitext_articles(SHARED / "corpora" / "wiki" / "wikitext-2" / "valid.txt", limit=60)
    write_jsonl_gz(OUT / "wiki" / "wikitext-2-valid-articles.jsonl.gz", wiki)

    (OUT / "evals").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHARED / "evals" / "gsm8k" / "test.jsonl", OUT / "evals" / "gsm8k-test.jsonl")
    shutil.copyfile(SHARED / "evals" / "humaneval" / "HumanEval.jsonl.gz", OUT / "evals" / "HumanEval.jsonl.gz")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
