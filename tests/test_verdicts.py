"""Positive accounting: a pool's verdicts cover each of its documents exactly once, and "kept" needs every
corpus stage that ran to have said so; anything else stops the run before it publishes."""

from __future__ import annotations

from pathlib import Path

import pytest

from curation.errors import AccountingError
from curation.stages.verdicts import DECIDED, DUPLICATE_ID, EDIT, KEPT, REJECTED, located_parts, pool_verdicts

STAGES = ("quality", "dedupe", "decontaminate")
CLUSTER = {"cluster_id": "c1", "cluster_size": 2}


def rejection(stage: str, reason: str) -> dict:
    return {"doc_id": "d", "source": "web", "stage": stage, "filter": f"{stage}_v1", "reason": reason}


def decided(position: int, doc_id: str, *records) -> tuple:
    return position, doc_id, (DECIDED, list(records))


def test_a_document_kept_by_every_stage_carries_its_cluster_and_cuts():
    parts = [
        decided(
            0,
            "a",
            ("quality", KEPT, {}),
            ("dedupe", KEPT, CLUSTER),
            ("dedupe", EDIT, {"paragraph": [[0, 5]]}),
            ("decontaminate", KEPT, {}),
            ("decontaminate", EDIT, {"decontaminate": [[9, 20]], "min_piece_chars": 0}),
        ),
        decided(1, "b", ("quality", REJECTED, rejection("quality", "too_short"))),
        decided(2, "c", ("quality", KEPT, {}), ("dedupe", REJECTED, rejection("dedupe", "duplicate_exact")), ("decontaminate", KEPT, {})),
        (3, "a", (DUPLICATE_ID, {"reason": "duplicate_id"})),
    ]
    rows = pool_verdicts("pool.jsonl", 4, reversed(parts), STAGES)
    assert [(r["i"], r["id"], r["verdict"]) for r in rows] == [(0, "a", KEPT), (1, "b", REJECTED), (2, "c", REJECTED), (3, "a", "quarantined")]
    assert rows[0]["cluster"] == CLUSTER
    assert rows[0]["edit"] == {"paragraph": [[0, 5]], "decontaminate": [[9, 20]], "min_piece_chars": 0}
    assert (rows[1]["stage"], rows[1]["reason"]) == ("quality", "too_short")
    assert (rows[2]["stage"], rows[2]["reason"]) == ("dedupe", "duplicate_exact")


def test_the_first_stage_that_rejects_gives_the_verdict():
    parts = [
        decided(0, "a", ("decontaminate", REJECTED, rejection("decontaminate", "contaminated")), ("quality", KEPT, {}),
                ("dedupe", REJECTED, rejection("dedupe", "near_duplicate")))
    ]
    (row,) = pool_verdicts("pool", 1, parts, STAGES)
    assert (row["verdict"], row["stage"], row["reason"]) == (REJECTED, "dedupe", "near_duplicate")


@pytest.mark.parametrize(
    "parts, problem",
    [
        ([decided(0, "a", ("quality", KEPT, {}), ("dedupe", KEPT, CLUSTER), ("decontaminate", KEPT, {}))], "document 1 has 0 verdicts"),
        ([decided(0, "a", ("quality", KEPT, {}), ("decontaminate", KEPT, {}))] * 1 + [decided(1, "b", ("quality", REJECTED, rejection("quality", "x")))],
         "0 verdicts from dedupe"),
        ([decided(0, "a", ("quality", KEPT, {}), ("dedupe", KEPT, CLUSTER), ("dedupe", KEPT, CLUSTER), ("decontaminate", KEPT, {})),
          decided(1, "b", ("quality", REJECTED, rejection("quality", "x")))], "2 verdicts from dedupe"),
        ([decided(0, "a", ("quality", REJECTED, rejection("quality", "x"))), (0, "a", (DUPLICATE_ID, {})),
          decided(1, "b", ("quality", REJECTED, rejection("quality", "x")))], "document 0 has 2 verdicts"),
        ([decided(0, "a", ("quality", REJECTED, rejection("quality", "x"))), decided(1, "b", ("quality", REJECTED, rejection("quality", "x"))),
          decided(7, "z", ("quality", KEPT, {}))], "beyond its 2 documents"),
    ],
    ids=["lost", "not-judged-by-dedupe", "judged-twice", "two-verdicts", "unknown-position"],
)
def test_a_missing_or_doubled_verdict_fails_loudly_never_counts_as_kept(parts, problem):
    with pytest.raises(AccountingError, match=problem) as err:
        pool_verdicts("web/a.jsonl.gz", 2, parts, STAGES)
    assert "web/a.jsonl.gz" in str(err.value) and "nothing was published" in str(err.value)
    assert "\n" not in str(err.value)


def test_a_stage_verdict_on_a_document_decide_never_located_fails():
    with pytest.raises(AccountingError, match="never located"):
        list(located_parts(("web", "ghost"), [], [("dedupe", KEPT, CLUSTER)]))
    with pytest.raises(AccountingError, match="located 2 times"):
        list(located_parts(("web", "twin"), [(0, 1), (1, 1)], [("quality", KEPT, {})]))
    assert list(located_parts(("web", "a"), [(3, 9)], [("quality", KEPT, {})])) == [(3, (9, "a", (DECIDED, [("quality", KEPT, {})])))]


def test_a_run_whose_dedupe_loses_a_document_fails_before_publishing(tmp_path, monkeypatch):
    """A stage that silently drops one document (as a runner losing elements would) must fail the run, not
    ship that document as kept."""
    from conftest import small_manifest, write_manifest

    from curation.pipeline import run
    from filters.dedupe import transforms
    from mixes.manifest import load_manifest

    honest = transforms._cluster_records
    lost: list = []

    def loses_one(handle):
        records = list(honest(handle))
        if not lost and records:
            lost.append(records.pop())
        return records

    monkeypatch.setattr(transforms, "_cluster_records", loses_one)
    body = small_manifest(tmp_path, dedupe={"exact": {"scope": "global"}})
    with pytest.raises(AccountingError, match="0 verdicts from dedupe"):
        run(load_manifest(write_manifest(tmp_path, body)), ["--direct_num_workers=1", "--direct_running_mode=in_memory"], log=lambda _: None)
    release = tmp_path / "out" / "small" / "1.0.0"
    assert not (release / "shards").exists() and not (release / "stats.json").exists()


def _pool_with_verdicts(tmp_path, verdicts: list[dict]):
    """A pool of the demo's first three web documents beside the given verdicts, as decide writes them."""
    import gzip

    import orjson
    import zstandard

    from curation.document import Document
    from curation.document_files import encode
    from curation.stages.curate import PoolFile
    from curation.stages.verdicts import verdicts_uri

    demo = sorted((Path(__file__).parents[1] / "data" / "demo" / "web").glob("*.json.gz"))[0]
    with gzip.open(demo) as f:
        docs = [Document(id=f"web-{i}", text=orjson.loads(line)["text"], source="web") for i, line in zip(range(3), f)]
    pool = PoolFile("web", str(demo), "p0", str(tmp_path / "p0.pool.jsonl.zst"), read=3, quarantined=0)
    Path(pool.documents_uri).write_bytes(zstandard.ZstdCompressor().compress(encode(docs)))
    uri = Path(verdicts_uri(str(tmp_path), pool.digest))
    uri.parent.mkdir(parents=True)
    uri.write_bytes(zstandard.ZstdCompressor().compress(b"".join(orjson.dumps(v) + b"\n" for v in verdicts)))
    return pool, docs


def test_tokenize_reads_each_pooled_document_with_its_verdict_parsing_only_the_kept(tmp_path):
    from curation.stages.tokenize import judged_documents

    verdicts = [{"i": 0, "verdict": KEPT, "id": "web-0"}, {"i": 1, "verdict": REJECTED, "id": "web-1"}, {"i": 2, "verdict": KEPT, "id": "web-2"}]
    pool, docs = _pool_with_verdicts(tmp_path, verdicts)
    judged = list(judged_documents(pool, str(tmp_path)))
    assert [verdict for _, verdict in judged] == verdicts
    assert [doc and (doc.id, doc.text) for doc, _ in judged] == [("web-0", docs[0].text), None, ("web-2", docs[2].text)]


@pytest.mark.parametrize(
    ("verdicts", "problem"),
    [
        ([{"i": 0, "verdict": KEPT, "id": "web-0"}, {"i": 1, "verdict": KEPT, "id": "web-1"}], r"document 2 \('web-2'\) of .* has no verdict"),
        ([{"i": 0, "verdict": KEPT, "id": "web-0"}, {"i": 2, "verdict": KEPT, "id": "web-2"}], r"document 1 \('web-1'\) of .* has no verdict"),
        ([{"i": i, "verdict": REJECTED, "id": f"web-{i}"} for i in range(4)], "more verdicts than documents"),
    ],
    ids=["last-unjudged", "rejected-one-unjudged", "verdict-without-document"],
)
def test_tokenize_stops_at_a_pooled_document_without_its_verdict(tmp_path, verdicts, problem):
    from curation.stages.tokenize import judged_documents

    pool, _ = _pool_with_verdicts(tmp_path, verdicts)
    with pytest.raises(AccountingError, match=problem):
        list(judged_documents(pool, str(tmp_path)))
