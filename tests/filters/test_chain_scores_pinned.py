"""The whole web chain's scores, modified text and decisions on every document of ../shared/corpora/web,
pinned per document as measured before the chain's speed work: an optimisation that changes any score,
any masked or removed character or any rejection fails here and names the documents it changed.

After an intended change of scores (a new filter version), rewrite the pin with
`PYTHONPATH=$PWD:$PWD/tests python3.11 tests/filters/test_chain_scores_pinned.py`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from helpers_quality import web_corpus_records

from curation.chain import Chain
from curation.document import Document
from filters.words import WORDS

REPO = Path(__file__).resolve().parents[2]
PIN = Path(__file__).with_name("web_chain_scores.pin.json")
URL_LISTS = REPO / "lists" / "fineweb-url"
# manifests/stage1's web steps, every filter scoring every document (no gate), so each is pinned on all.
SPECS = [
    {
        "use": "url_blocklist_v1",
        "banned_words_file": str(URL_LISTS / "banned_words.txt"),
        "banned_subwords_file": str(URL_LISTS / "banned_subwords.txt"),
        "soft_banned_words_file": str(URL_LISTS / "soft_banned_words.txt"),
    },
    {"use": "language_v1", "languages": ["en"]},
    {"use": "gopher_repetition_v1"},
    {"use": "gopher_quality_v1"},
    {"use": "c4_line_removal_v1"},
    {"use": "c4_quality_v1"},
    {"use": "fineweb_quality_v1"},
    {"use": "pii_mask_v1"},
]
BATCH_DOCS = 256


def document_digests(limit: int | None = None) -> list[str]:
    """Per document (the first `limit`), a digest of its final text, every stored score and its rejection."""
    records = web_corpus_records()[:limit]
    chain = Chain.from_specs(SPECS)
    chain.setup()
    digests = []
    for start in range(0, len(records), BATCH_DOCS):
        docs = [
            Document(
                id=str(start + i),
                text=r["text"],
                source="web",
                metadata={"url": r["url"]} if r["url"] else {},
            )
            for i, r in enumerate(records[start : start + BATCH_DOCS])
        ]
        chain.score_batch(docs)
        for doc in docs:
            rejection = chain.decide(doc)
            outcome = None if rejection is None else [rejection.filter, rejection.reason, rejection.score]
            payload = json.dumps([doc.text, doc.attributes, outcome], sort_keys=True)
            digests.append(hashlib.sha256(payload.encode()).hexdigest()[:16])
    return digests


def _assert_match_the_pin(digests: list[str]) -> None:
    pinned = json.loads(PIN.read_text())
    assert pinned["specs"] == json.loads(json.dumps(SPECS).replace(str(REPO), "<repo>"))
    assert len(digests) == len(pinned["digests"][: len(digests)])
    changed = [i for i, (now, then) in enumerate(zip(digests, pinned["digests"])) if now != then]
    assert not changed, f"{len(changed)} documents changed scores, text or decision, first: {changed[:10]}"


def test_web_chain_scores_match_the_pin():
    digests = document_digests()
    assert len(digests) == len(json.loads(PIN.read_text())["digests"])
    _assert_match_the_pin(digests)


def test_starting_the_word_table_afresh_between_batches_changes_no_score(monkeypatch):
    monkeypatch.setattr(WORDS, "max_chunks", 300)
    generation = WORDS.generation
    _assert_match_the_pin(document_digests(limit=2 * BATCH_DOCS))
    assert WORDS.generation >= generation + 1  # afresh before the second batch at least


if __name__ == "__main__":
    specs = json.loads(json.dumps(SPECS).replace(str(REPO), "<repo>"))
    PIN.write_text(json.dumps({"specs": specs, "digests": document_digests()}, indent=0) + "\n")
