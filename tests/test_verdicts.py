"""Positive accounting: a pool's verdicts cover each of its documents exactly once, and "kept" needs every
corpus stage that ran to have said so; anything else stops the run before it publishes."""

from __future__ import annotations

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
