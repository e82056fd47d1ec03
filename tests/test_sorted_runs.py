"""Decide's corpus-wide rows (ledger rejections, contamination matches, quarantine) reach their files through
sorted runs merged by one task: the same bytes whatever the bundling, and no task holds every row."""

from __future__ import annotations

import random

import apache_beam as beam

from curation import storage
from curation.engine import pipeline_options, run_pipeline
from curation.stages.decisions import GATHERED, REJECTIONS, read_decisions, write_decisions
from curation.stages.sorted_runs import SpilledRows, WriteSortedRunsFn

REVIEWS = "data/demo/web/c4-sample.01.json.gz"


def _rejections() -> list[dict]:
    """Real ids and URLs from a demo file, several rows per document (ties on everything but the detail)."""
    import gzip

    import orjson

    rows = []
    with gzip.open(REVIEWS) as f:
        for line in f:
            doc = orjson.loads(line)
            for span in range(3):
                rows.append(
                    {
                        "doc_id": doc["url"], "source": "web", "stage": "decontamination", "filter": "evals",
                        "reason": "contaminated_span", "score": 1.0, "detail": {"span": span}, "uri": REVIEWS,
                    }
                )
    return rows


def _write(tmp_path, rows: list[dict], workers: int, run_rows: int) -> bytes:
    folder = str(tmp_path / f"decisions-{workers}-{run_rows}")
    work = str(tmp_path / f"work-{workers}-{run_rows}")
    key = GATHERED["rejections"][1]

    class _Write(beam.DoFn):
        def process(self, _, runs):
            write_decisions(folder, list(runs))
            yield folder

    def build(p):
        runs = p | beam.Create(rows, reshuffle=True) | beam.ParDo(WriteSortedRunsFn(work, "rejections", key, run_rows=run_rows))
        p | "One" >> beam.Create([None]) | beam.ParDo(_Write(), runs=beam.pvalue.AsList(runs))

    run_pipeline(pipeline_options([f"--direct_num_workers={workers}"], workers), build)
    with open(storage.join(folder, REJECTIONS), "rb") as f:
        return f.read()


def test_the_merged_rejections_are_the_same_bytes_for_any_bundling_and_sorted(tmp_path):
    rows = _rejections()
    shuffled = rows[:]
    random.Random(5).shuffle(shuffled)
    one = _write(tmp_path, rows, 1, 1 << 16)
    many = _write(tmp_path, shuffled, 2, 97)
    assert one == many
    decisions = read_decisions(str(tmp_path / "decisions-1-65536"))
    got = [r.to_dict() for r in decisions.rejections]
    assert len(got) == len(rows)
    assert [(r["doc_id"], r["detail"]["span"]) for r in got] == sorted((r["doc_id"], r["detail"]["span"]) for r in rows)


def test_no_run_holds_more_than_its_share_of_rows(tmp_path):
    rows = _rejections()
    _write(tmp_path, rows, 1, 100)
    runs = storage.list_files(str(tmp_path / "work-1-100" / "sorted" / "rejections" / "*.jsonl.zst"))
    sizes = []
    for uri in runs:
        with storage.open_decompressed(uri) as f:
            sizes.append(sum(1 for _ in f))
    assert sum(sizes) == len(rows) and max(sizes) <= 100 and len(runs) >= len(rows) // 100


def test_spilled_rows_come_back_in_key_order_equal_keys_in_the_order_added(tmp_path):
    rows = _rejections()
    random.Random(11).shuffle(rows)
    spilled = SpilledRows(str(tmp_path / "work"), "spill", key=lambda r: r["doc_id"], run_rows=7)
    for row in rows:
        spilled.add(row)
    runs = storage.list_files(str(tmp_path / "work" / "sorted" / "spill" / "*.jsonl.zst"))
    assert len(rows) == 30 and len(runs) == 4  # never more than one run's rows held
    assert list(spilled.merged()) == sorted(rows, key=lambda r: r["doc_id"])  # a stable sort's order
