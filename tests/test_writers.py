import gzip
from pathlib import Path

import orjson
import pyarrow.parquet as pq
import pytest
import zstandard
from helpers_io import REPO_DATA, shared_corpus, source, split

from curation.readers import read_source_file
from curation.writers import DOCUMENT_SCHEMA, DocumentWriter, write_jsonl, write_parquet_rows


def _documents():
    docs, _ = split(read_source_file(source(name="web"), str(REPO_DATA / "c4-sample.01.json.gz")))
    parquet_docs, _ = split(
        read_source_file(
            source(name="web", text_field="contents"), str(REPO_DATA / "universal_fdedup__sample1.parquet")
        )
    )
    docs += parquet_docs
    for i, d in enumerate(docs):
        d.attributes = {"gopher_quality_v1/word_count": float(len(d.text.split())), "rank": i}
    return docs


def _comparable(doc):
    return (doc.id, doc.text, doc.source, doc.added, doc.created, doc.metadata, doc.attributes)


@pytest.mark.parametrize("fmt", ["jsonl.zst", "jsonl.gz", "parquet"])
def test_written_documents_read_back_unchanged(tmp_path, fmt):
    docs = _documents()
    with DocumentWriter(str(tmp_path / "pool" / "web"), fmt, target_bytes=1 << 30) as writer:
        for d in docs:
            writer.write(d.to_dict())
    files = writer.close()
    assert files == [str(tmp_path / "pool" / f"web-00000.{fmt}")]
    back, quarantined = split(read_source_file(source(name="web"), files[0]))
    assert quarantined == []
    assert [_comparable(d) for d in back] == [_comparable(d) for d in docs]
    assert [d.provenance.line for d in back] == list(range(1, len(docs) + 1))


def test_jsonl_output_is_one_dolma_object_a_line(tmp_path):
    docs = _documents()
    with DocumentWriter(str(tmp_path / "web"), "jsonl.zst", target_bytes=1 << 30) as writer:
        for d in docs:
            writer.write(d.to_dict())
    (path,) = writer.close()
    with open(path, "rb") as f:
        lines = zstandard.ZstdDecompressor().stream_reader(f).read().splitlines()
    assert [orjson.loads(line) for line in lines] == [orjson.loads(orjson.dumps(d.to_dict())) for d in docs]


def test_parquet_output_has_the_stable_schema(tmp_path):
    with DocumentWriter(str(tmp_path / "web"), "parquet", target_bytes=1 << 30) as writer:
        for d in _documents():
            writer.write(d.to_dict())
    (path,) = writer.close()
    assert pq.read_schema(path).remove_metadata() == DOCUMENT_SCHEMA


@pytest.mark.parametrize("fmt", ["jsonl.zst", "jsonl.gz", "parquet"])
def test_output_rolls_into_numbered_files_near_the_target(tmp_path, fmt):
    path = shared_corpus("web/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
    docs, _ = split(read_source_file(source(name="cc"), str(path)))
    target = 300_000
    with DocumentWriter(str(tmp_path / "cc"), fmt, target_bytes=target) as writer:
        for d in docs:
            writer.write(d.to_dict())
    files = writer.close()
    assert files == [str(tmp_path / f"cc-{i:05d}.{fmt}") for i in range(len(files))]
    assert len(files) >= 3
    sizes = [(tmp_path / f).stat().st_size for f in files]
    # Every file but the last reaches the target; compressors buffer, so one may pass it by a block.
    assert all(size >= target for size in sizes[:-1]) and all(size < 2 * target for size in sizes)
    back = [d for f in files for d in split(read_source_file(source(name="cc"), f))[0]]
    assert [d.id for d in back] == [d.id for d in docs]


@pytest.mark.parametrize("fmt", ["jsonl.zst", "jsonl.gz", "parquet"])
def test_same_documents_give_identical_bytes(tmp_path, fmt):
    outputs = []
    for run in ("a", "b"):
        with DocumentWriter(str(tmp_path / run / "web"), fmt, target_bytes=1 << 30) as writer:
            for d in _documents():
                writer.write(d.to_dict())
        outputs.append([Path(f).read_bytes() for f in writer.close()])
    assert outputs[0] == outputs[1]


def test_exception_mid_write_leaves_no_final_file(tmp_path):
    docs = _documents()
    with (
        pytest.raises(RuntimeError),
        DocumentWriter(str(tmp_path / "web"), "jsonl.zst", target_bytes=1 << 30) as writer,
    ):
        for i, d in enumerate(docs):
            if i == 5:
                raise RuntimeError("worker lost")
            writer.write(d.to_dict())
    assert list(tmp_path.iterdir()) == []


def test_exception_keeps_finished_files_and_drops_only_the_open_one(tmp_path):
    docs = _documents()
    with (
        pytest.raises(RuntimeError),
        DocumentWriter(str(tmp_path / "web"), "parquet", target_bytes=5_000) as writer,
    ):
        for d in docs:
            writer.write(d.to_dict())
        raise RuntimeError("worker lost")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names and all(n.startswith("web-") and n.endswith(".parquet") for n in names)
    for name in names:
        assert split(read_source_file(source(name="web"), str(tmp_path / name)))[0]


def test_writer_with_no_documents_writes_no_file(tmp_path):
    with DocumentWriter(str(tmp_path / "web"), "jsonl.gz", target_bytes=1000) as writer:
        assert writer.close() == []
    assert writer.close() == [] and list(tmp_path.iterdir()) == []


def test_write_jsonl_and_parquet_rows_for_ledgers(tmp_path):
    rows = [{"doc_id": f"d{i}", "reason": "too_few_words", "score": i / 10} for i in range(25_000)]
    write_jsonl(str(tmp_path / "ledger.jsonl.gz"), rows)
    lines = gzip.decompress((tmp_path / "ledger.jsonl.gz").read_bytes()).splitlines()
    assert [orjson.loads(x) for x in lines] == rows
    write_parquet_rows(str(tmp_path / "ledger.parquet"), iter(rows))
    assert pq.read_table(tmp_path / "ledger.parquet").to_pylist() == rows


def test_jsonl_zst_documents_are_frames_a_reader_can_seek_to(tmp_path):
    from curation.writers import ZSTD_FRAME_DOCUMENTS, iter_zstd_frames, read_zstd_frame

    docs = [{"id": str(i), "text": f"document {i} " * (i % 7 + 1)} for i in range(ZSTD_FRAME_DOCUMENTS * 2 + 5)]
    with DocumentWriter(str(tmp_path / "part"), "jsonl.zst", 1 << 30) as writer:
        for d in docs:
            writer.write(d)
    path = tmp_path / "part-00000.jsonl.zst"
    with path.open("rb") as f:
        frames = list(iter_zstd_frames(f))
    assert [len(data.splitlines()) for _, data in frames] == [ZSTD_FRAME_DOCUMENTS, ZSTD_FRAME_DOCUMENTS, 5]
    offset, _ = frames[1]
    second = read_zstd_frame(str(path), offset).splitlines()
    assert orjson.loads(second[3])["id"] == str(ZSTD_FRAME_DOCUMENTS + 3)
    assert zstandard.ZstdDecompressor().stream_reader(path.open("rb"), read_across_frames=True).read().splitlines() == [
        orjson.dumps(d) for d in docs
    ]
