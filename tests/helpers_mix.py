"""The small real mix several test modules read (four real sources from the shipped demo data), built once
per session: `demo_mix` is its release folder and stats."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import DEMO_DATA, TOKENIZER, write_manifest

from curation.pipeline import run
from mixes.manifest import load_manifest

# Budgets large against each source's documents: a document is never split, so a budget of a few
# documents (WikiText articles run to thousands of tokens) can only be met to within part of one.
REQUESTED = {"web": 0.35, "code": 0.25, "math": 0.25, "papers": 0.15}
TARGET_TOKENS = 300_000


def four_source_mix(name: str, target_tokens: int, shard_tokens: int, max_repetition: float | None = None) -> dict:
    """The manifest of a real mix of four demo sources at REQUESTED shares of `target_tokens`, exact dedupe
    across them, output under `out`; `max_repetition` lets a target past the data be met by copies
    (bench/bench_mix_launcher.py builds its mixes here too)."""
    limit = {} if max_repetition is None else {"max_repetition": max_repetition}
    return {
        "name": name,
        "version": "1.0.0",
        "seed": 11,
        "sources": [
            {"name": "web", "paths": [str(DEMO_DATA / "web" / "cc-2019-30-00140.jsonl.gz")]},
            {"name": "code", "paths": [str(DEMO_DATA / "code" / "*.jsonl.zst")]},
            {"name": "math", "paths": [str(DEMO_DATA / "math" / "*")]},
            {"name": "papers", "paths": [str(DEMO_DATA / "papers" / "*.jsonl.gz")]},
        ],
        "dedupe": {"exact": {"scope": "global"}},
        "mix": {"target_tokens": target_tokens, "sources": {k: {"ratio": v, **limit} for k, v in REQUESTED.items()}},
        "output": {"path": "out", "tokenizer": str(TOKENIZER), "shard_tokens": shard_tokens},
    }


@pytest.fixture(scope="session")
def demo_mix(tmp_path_factory) -> tuple[Path, dict]:
    folder = tmp_path_factory.mktemp("mix")
    body = four_source_mix("mix-check", TARGET_TOKENS, shard_tokens=100_000)
    stats = run(load_manifest(write_manifest(folder, body)), ["--direct_num_workers=2"], log=lambda _: None)
    return folder / "out" / "mix-check" / "1.0.0", stats
