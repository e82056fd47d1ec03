"""The lists shipped in lists/ and real documents from the demo corpus, shared by the issue #14 filters' tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson
import zstandard

REPO = Path(__file__).resolve().parents[1]
URL_LISTS = REPO / "lists" / "fineweb-url"
BADWORDS_DIR = REPO / "lists" / "ldnoobw"
CC_WEB = REPO / "data" / "demo" / "web" / "cc-2019-30-00140.jsonl.gz"
C4_WEB = REPO / "data" / "demo" / "web" / "c4-sample.02.json.gz"
C4_WEB_01 = REPO / "data" / "demo" / "web" / "c4-sample.01.json.gz"
CODE_00 = REPO / "data" / "demo" / "code" / "github-permissive-00.jsonl.zst"
CODE_01 = REPO / "data" / "demo" / "code" / "github-permissive-01.jsonl.zst"
SHARED_CODE = REPO.parent / "shared" / "corpora" / "code" / "github-permissive-sample.jsonl.gz"


def fineweb_url_lists(**overrides) -> dict[str, str | None]:
    """url_blocklist_v1's list options naming the shipped FineWeb lists."""
    lists = {
        "urls_file": str(URL_LISTS / "urls.txt.gz"),
        "banned_words_file": str(URL_LISTS / "banned_words.txt"),
        "banned_subwords_file": str(URL_LISTS / "banned_subwords.txt"),
        "soft_banned_words_file": str(URL_LISTS / "soft_banned_words.txt"),
    }
    lists.update(overrides)
    return lists


def demo_record(path: Path, line: int) -> dict:
    """The record on 0-based `line` of a `.gz` or `.zst` JSONL file."""
    opener = (lambda p: zstandard.open(p, "rt", encoding="utf-8")) if path.suffix == ".zst" else (lambda p: gzip.open(p, "rb"))
    with opener(path) as f:
        for number, raw in enumerate(f):
            if number == line:
                return orjson.loads(raw)
    raise IndexError(f"{path} has no line {line}")
