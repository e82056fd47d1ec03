import gzip

import orjson
import pytest
import zstandard
from conftest import DEMO_DATA
from helpers_io import REPO_DATA, shared_corpus, source, split

from curation.document import Skipped, stable_id, text_hash
from curation.errors import CurationError, InputError
from curation.readers import detect_format, read_source_file

C4_SAMPLE = REPO_DATA / "c4-sample.01.json.gz"


@pytest.mark.parametrize(
    "name,fmt",
    [
        ("a.jsonl", "jsonl"),
        ("a.json.gz", "jsonl"),
        ("a.jsonl.zst", "jsonl"),
        ("s3://b/a.parquet", "parquet"),
        ("CC-MAIN-1.warc.gz", "warc"),
        ("x.warc", "warc"),
        ("CC-MAIN-1.warc.wet.gz", "wet"),
        ("x.wet", "wet"),
    ],
)
def test_auto_format_follows_the_extension(name, fmt):
    assert detect_format(name) == fmt


def test_unknown_extension_asks_for_an_explicit_format():
    with pytest.raises(InputError, match="set the source's format"):
        detect_format("dump.csv")


def test_jsonl_documents_carry_source_provenance_and_url():
    docs, quarantined = split(read_source_file(source(name="c4"), str(C4_SAMPLE)))
    raw = [orjson.loads(line) for line in gzip.decompress(C4_SAMPLE.read_bytes()).splitlines()]
    assert quarantined == [] and len(docs) == len(raw) == 10
    for line, (doc, record) in enumerate(zip(docs, raw), start=1):
        assert doc.source == "c4" and doc.text == record["text"]
        assert doc.provenance.uri == str(C4_SAMPLE) and doc.provenance.line == line
        assert doc.provenance.text_hash == text_hash(record["text"])
        assert doc.url == record["url"]
        assert doc.metadata == {"url": record["url"], "date": record["date"]}
        # C4 records have no id: a stable digest of (source, file, line) stands in.
        assert doc.id == stable_id("c4", str(C4_SAMPLE), line)


def test_metadata_fields_limit_what_is_copied(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(
        orjson.dumps(
            {"id": 7, "text": "hello", "meta": {"link": "http://a.example/"}, "lang": "en", "junk": 1}
        )
        + b"\n"
    )
    (doc,) = read_source_file(source(metadata_fields=["lang"], url_field="meta.link"), str(path))
    assert doc.id == "7"
    assert doc.metadata == {"lang": "en", "url": "http://a.example/"}


def test_dolma_fields_are_preserved():
    path = shared_corpus("web/CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz")
    docs, quarantined = split(read_source_file(source(name="cc"), str(path)))
    first = orjson.loads(gzip.decompress(path.read_bytes()).split(b"\n", 1)[0])
    assert docs[0].id == first["id"]
    assert (docs[0].added, docs[0].created) == (first["added"], first["created"])
    assert docs[0].metadata["url"] == first["metadata"]["url"]
    # The dump keeps 27 records whose text is empty: they are quarantined, not lost.
    assert len(docs) + len(quarantined) == 697
    assert {q.reason for q in quarantined} == {"empty_text"}


def test_zstd_jsonl_reads_like_gzip(tmp_path):
    path = tmp_path / "c4.jsonl.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(gzip.decompress(C4_SAMPLE.read_bytes())))
    from_zstd, _ = split(read_source_file(source(), str(path)))
    from_gzip, _ = split(read_source_file(source(), str(C4_SAMPLE)))
    assert [d.text for d in from_zstd] == [d.text for d in from_gzip]


def test_parquet_rows_with_configured_text_column():
    path = REPO_DATA / "universal_fdedup__sample1.parquet"
    docs, quarantined = split(read_source_file(source(text_field="contents"), str(path)))
    assert quarantined == [] and len(docs) == 5
    assert [d.provenance.line for d in docs] == [1, 2, 3, 4, 5]
    assert docs[0].url.startswith("https://www.ibm.com/")
    assert "contents" not in docs[0].metadata and "title" in docs[0].metadata


def test_every_shared_parquet_file_reads_all_rows():
    folder = shared_corpus("web/parquet")
    expected_rows = {
        "language_lang_id__test_02": 200,
        "language_lang_id__test_03": 200,
        "universal_hap__test1": 50,
    }
    for stem, rows in expected_rows.items():
        docs, quarantined = split(read_source_file(source(), str(folder / f"{stem}.parquet")))
        text_column = "contents" if stem.startswith("universal") else "text"
        if text_column != "text":
            docs, quarantined = split(
                read_source_file(source(text_field=text_column), str(folder / f"{stem}.parquet"))
            )
        assert (len(docs), quarantined) == (rows, []), stem
    # Arrow 15 file with a timestamp column and nested structs: timestamps become ISO text in JSON.
    docs, _ = split(
        read_source_file(source(text_field="contents"), str(folder / "universal_filter__test1.parquet"))
    )
    assert len(docs) == 100 and orjson.loads(orjson.dumps(docs[0].metadata))["extra"]


def test_warc_response_becomes_main_content_text():
    docs, quarantined = split(read_source_file(source(name="cc"), str(REPO_DATA / "whirlwind.warc.gz")))
    assert quarantined == [] and len(docs) == 1
    (doc,) = docs
    assert doc.url == "https://an.wikipedia.org/wiki/Escopete"
    assert doc.created == "2024-05-18T01:58:10Z"
    assert doc.id.startswith("urn:uuid:") and doc.metadata["warc_record_id"] == doc.id
    assert doc.provenance.offset > 0 and doc.provenance.line is None
    assert "Escopete" in doc.text and "<div" not in doc.text


def test_wet_conversion_record_text_is_kept_as_is():
    path = REPO_DATA / "whirlwind.warc.wet.gz"
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert quarantined == [] and len(docs) == 1
    body = gzip.decompress(path.read_bytes()).decode()
    assert docs[0].text in body and docs[0].text.startswith("Escopete")
    assert docs[0].url == "https://an.wikipedia.org/wiki/Escopete"
    assert docs[0].metadata["warc_refers_to"].startswith("urn:uuid:")


def test_shared_warc_samples_yield_every_html_response():
    for name, responses in [("sample-0000.warc.gz", 22), ("sample-0001.warc.gz", 15)]:
        docs, quarantined = split(read_source_file(source(), str(shared_corpus(f"warc/{name}"))))
        assert (len(docs), quarantined) == (responses, []), name
        # Some writers put the target URI in angle brackets; the URL is stored without them.
        assert all(d.url.startswith("http") for d in docs)
        offsets = [d.provenance.offset for d in docs]
        assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)


def test_zstd_warc_reads_like_gzip(tmp_path):
    # FastWARC seeks the stream it is given, and a zstd (or S3) stream cannot seek: records are framed first.
    gzipped = DEMO_DATA / "warc" / "sample-0000.warc.gz"
    path = tmp_path / "sample.warc.zst"
    path.write_bytes(zstandard.ZstdCompressor().compress(gzip.decompress(gzipped.read_bytes())))
    from_zstd, _ = split(read_source_file(source(), str(path)))
    from_gzip, _ = split(read_source_file(source(), str(gzipped)))
    assert len(from_zstd) == 22 and [d.text for d in from_zstd] == [d.text for d in from_gzip]


def test_warc_responses_that_are_not_html_pages_are_counted_as_skipped(tmp_path):
    data = gzip.decompress((DEMO_DATA / "warc" / "sample-0000.warc.gz").read_bytes())
    # Same-length edits, so every record keeps its Content-Length: one 404 page, one PNG.
    data = data.replace(b"HTTP/1.1 200 OK", b"HTTP/1.1 404 OK", 1)
    data = data.replace(b"Content-Type: text/html", b"Content-Type: image/png", 2)
    path = tmp_path / "edited.warc"
    path.write_bytes(data)
    items = list(read_source_file(source(), str(path)))
    docs, quarantined = split(items)
    skipped = [i.reason for i in items if isinstance(i, Skipped)]
    assert (len(docs), quarantined) == (20, [])
    assert sorted(skipped) == ["http_status_not_200", "not_html"]


def test_chunked_transfer_encoding_is_decoded():
    (doc,) = read_source_file(source(), str(shared_corpus("warc/warcio/example-iana.org-chunked.warc")))
    assert doc.text.startswith("Internet Assigned Numbers Authority")


def test_trafilatura_extractor_is_selectable_by_name():
    try:
        import trafilatura  # noqa: F401
    except ImportError:
        with pytest.raises(CurationError, match="trafilatura"):
            list(read_source_file(source(extractor="trafilatura"), str(REPO_DATA / "whirlwind.warc.gz")))
        return
    (doc,) = read_source_file(source(extractor="trafilatura"), str(REPO_DATA / "whirlwind.warc.gz"))
    (resiliparse_doc,) = read_source_file(source(), str(REPO_DATA / "whirlwind.warc.gz"))
    assert "Escopete" in doc.text and doc.text != resiliparse_doc.text
