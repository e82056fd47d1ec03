"""The lists shipped in lists/ and real documents from the demo corpus, shared by the issue #14 filters' tests."""

from __future__ import annotations

import gzip
from pathlib import Path

import orjson

REPO = Path(__file__).resolve().parents[1]
URL_LISTS = REPO / "lists" / "fineweb-url"
BADWORDS_DIR = REPO / "lists" / "ldnoobw"
CC_WEB = REPO / "data" / "demo" / "web" / "cc-2019-30-00140.jsonl.gz"
C4_WEB = REPO / "data" / "demo" / "web" / "c4-sample.02.json.gz"


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
    with gzip.open(path, "rb") as f:
        for number, raw in enumerate(f):
            if number == line:
                return orjson.loads(raw)
    raise IndexError(f"{path} has no line {line}")
