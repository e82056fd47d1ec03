"""The scale-out benchmark's corpus and manifest (bench/paragraph_corpus.py, bench/million.yaml): documents
of real paragraphs with distinct ids, the planned exact duplicates and no others, and a manifest that passes
`curation validate`'s checks once the bench has placed it."""

from __future__ import annotations

import gzip
import sys
from itertools import islice
from pathlib import Path

import orjson
import yaml

from curation.preflight import check_files
from mixes.manifest import load_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from bench_scale_out import million_manifest  # noqa: E402
from paragraph_corpus import PROSE, _jsonl_texts, documents, pieces  # noqa: E402


def test_documents_are_paragraph_pairs_with_only_the_planned_exact_duplicates(shared):
    parts = pieces(islice(_jsonl_texts(shared / "corpora" / PROSE[0]), 100))
    assert parts and all(150 <= len(p) <= 800 for p in parts)
    # Past len(parts) documents the pairs wrap around: the texts must still differ.
    docs = list(documents("prose", parts, 3 * len(parts)))
    assert len({d["id"] for d in docs}) == len(docs)
    texts = [d["text"] for d in docs]
    assert all(texts[n] == texts[n - 9] for n in range(9, len(docs), 10))
    assert len(set(texts)) == len(docs) - len(range(9, len(docs), 10))
    near = docs[4]["text"]
    assert near != docs[3]["text"] and docs[3]["text"].startswith(near[:-1])


def test_the_benchs_manifest_validates_with_the_budget_scaled_to_the_corpus(shared, tmp_path):
    parts = pieces(islice(_jsonl_texts(shared / "corpora" / PROSE[0]), 20))
    for source in ("prose", "reviews"):
        (tmp_path / "corpus" / source).mkdir(parents=True)
        with gzip.open(tmp_path / "corpus" / source / "part-0000.jsonl.gz", "wb") as f:
            f.writelines(orjson.dumps(d) + b"\n" for d in documents(source, parts, 50))
    path = tmp_path / "bench.yaml"
    path.write_text(yaml.safe_dump(million_manifest(tmp_path / "corpus", str(tmp_path / "out"), 10_000)))
    loaded = load_manifest(path)
    check_files(loaded)
    assert loaded.manifest.mix.target_tokens == 400_000
    assert [s.name for s in loaded.manifest.sources] == ["prose", "reviews"]
