"""Shared builders for the quality-filter tests: the real web text in ../shared and a plain English page."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared"
WEB = SHARED / "corpora" / "web"
QUALITY_LABELS = SHARED / "corpora" / "quality-labels"

# A plain English paragraph (written for these tests) that every heuristic filter keeps.
GOOD_PARAGRAPH = (
    "The river rose slowly through the night, and by morning the lower fields were under water. "
    "Farmers moved their animals to the hill behind the church, where the ground stays dry even in "
    "the worst years. The school opened late so that children could help carry feed and blankets. "
    "By noon the rain had stopped, and the water began to fall back toward its usual course. "
    "Most people agreed that the new drainage ditches had done their job better than expected."
)


def shared_or_skip(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: this test reads real text from ../shared")
    return path


def web_corpus_records() -> list[dict]:
    """Every document of ../shared/corpora/web's JSONL and JSON.gz files (about 1,670) as its text and URL
    (top-level `url` or the Dolma record's `metadata.url`; None when it has neither)."""
    folder = shared_or_skip(WEB)
    records = []
    for path in sorted([*folder.glob("*.json*"), *folder.glob("redpajama-excerpts/*.jsonl")]):
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", encoding="utf-8") as lines:
            records.extend(map(text_and_url, map(json.loads, filter(str.strip, lines))))
    return records


def text_and_url(record: dict) -> dict:
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    return {"text": record["text"], "url": record.get("url") or metadata.get("url")}


def web_corpus_texts() -> list[str]:
    """Every document text in ../shared/corpora/web's JSONL and JSON.gz files (about 1,670)."""
    return [r["text"] for r in web_corpus_records()]
