"""Bad input: every broken record is quarantined with a reason and a position (or, with on_error: fail,
raises InputError naming file and position); documents before the damage are kept."""

import gzip
import subprocess
import sys

import orjson
import pytest
import zstandard
from conftest import REPO, link_unopenable_file
from helpers_io import REPO_DATA, shared_corpus, source, split
from hostile.corpus import (
    BOMB_WRITERS,
    C4_SAMPLE,
    SAMPLE_WARC,
    arxiv_lines,
    block_size_swallowing_the_next_frame,
    c4_lines,
    parquet_with_invalid_metadata,
    sample_warc_records,
    truncated,
    warc_with_wrong_length,
    with_bad_line,
    write_bomb,
    zstd_frames,
)

from curation import storage
from curation.errors import InputError
from curation.readers import read_source_file

FIFTY_MB = 50 * 1024 * 1024


def _with_bad_line(tmp_path, bad: bytes):
    return with_bad_line(tmp_path / "docs.jsonl", bad)


@pytest.mark.parametrize(
    "bad_line,reason",
    [
        (b'{"text": "cut off\n', "invalid_json"),
        (b'{"text": "caf\xe9 latin-1"}\n', "invalid_utf8"),
        (b'{"body": "no text field"}\n', "missing_text"),
        (b'{"text": 42}\n', "non_string_text"),
        (b'{"text": "  \\n "}\n', "empty_text"),
        (b'["a", "list"]\n', "not_an_object"),
        (b'{"id": ["a", "list"], "text": "ok"}\n', "invalid_id"),
        (b'{"id": 1.5, "text": "ok"}\n', "invalid_id"),
    ],
)
def test_bad_line_is_quarantined_with_its_line_and_reading_goes_on(tmp_path, bad_line, reason):
    path = _with_bad_line(tmp_path, bad_line)
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert len(docs) == 10
    (q,) = quarantined
    assert (q.reason, q.line, q.uri, q.source) == (reason, 4, str(path), "test")
    assert q.offset == sum(len(x) for x in c4_lines()[:3])
    assert [d.provenance.line for d in docs] == [1, 2, 3, 5, 6, 7, 8, 9, 10, 11]


def test_invalid_utf8_is_never_replaced_silently(tmp_path):
    path = _with_bad_line(tmp_path, b'{"text": "ok \xff\xfe bytes"}\n')
    docs, _ = split(read_source_file(source(), str(path)))
    assert not any("\ufffd" in d.text for d in docs)


def test_on_error_fail_raises_naming_file_and_line(tmp_path):
    path = _with_bad_line(tmp_path, b"not json\n")
    with pytest.raises(InputError, match=r"docs\.jsonl: line 4: invalid_json"):
        list(read_source_file(source(on_error="fail"), str(path)))


def test_on_error_fail_shows_control_characters_of_a_bad_line_escaped(tmp_path):
    """A hostile line must not drive the user's terminal: its escape sequences, NULs and carriage returns are
    printed as escapes in the one-line error."""
    path = _with_bad_line(tmp_path, b"\x1b[2J\x1b]0;owned\x07 \x00\x00 \r\x9b text\n")
    with pytest.raises(InputError) as raised:
        list(read_source_file(source(on_error="fail"), str(path)))
    message = str(raised.value)
    assert "\\x1b[2J\\x1b]0;owned\\x07 \\x00\\x00 \\r" in message
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in message), message


def test_empty_files_yield_nothing(tmp_path):
    (tmp_path / "empty.jsonl").write_bytes(b"")
    (tmp_path / "empty.jsonl.gz").write_bytes(gzip.compress(b""))
    (tmp_path / "blank.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(b"\n\n"))
    for name in ("empty.jsonl", "empty.jsonl.gz", "blank.jsonl.zst"):
        assert list(read_source_file(source(), str(tmp_path / name))) == []


class _CallCounter:
    """Stands in for a decompressed stream, counting the calls a reader makes of it."""

    def __init__(self, stream):
        self.stream, self.calls = stream, 0

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.stream.close()

    def __getattr__(self, name):
        self.calls += 1
        return getattr(self.stream, name)


def test_runs_of_blank_lines_are_skipped_a_buffer_at_a_time_and_still_counted(tmp_path, monkeypatch):
    first, second = c4_lines()[:2]
    newlines = 8 * 1024 * 1024
    path = tmp_path / "newlines.jsonl.gz"
    path.write_bytes(gzip.compress(first + b"\n" * newlines + b" \r\n\t\n" + second))
    streams = []
    open_decompressed = storage.open_decompressed

    def open_counting(uri, digest=None):
        streams.append(_CallCounter(open_decompressed(uri, digest)))
        return streams[-1]

    monkeypatch.setattr(storage, "open_decompressed", open_counting)
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert quarantined == []
    assert [(d.provenance.line, d.provenance.offset) for d in docs] == [
        (1, 0),
        (newlines + 4, len(first) + newlines + 5),
    ]
    # One Python call per line would be millions; a buffer at a time is a few thousand.
    assert streams[0].calls < newlines // 1000, streams[0].calls


def test_missing_input_is_an_input_error_even_when_quarantining(tmp_path):
    with pytest.raises(InputError, match="absent.jsonl.gz"):
        list(read_source_file(source(on_error="quarantine"), str(tmp_path / "absent.jsonl.gz")))


def test_file_that_cannot_be_opened_is_one_quarantine_row_or_under_fail_an_input_error(tmp_path):
    path = link_unopenable_file(tmp_path / "locked.jsonl.gz")
    (q,) = read_source_file(source(), str(path))
    assert (q.reason, q.uri, q.offset) == ("unreadable_file", str(path), 0)
    assert "Permission denied" in q.excerpt
    with pytest.raises(InputError, match=r"locked\.jsonl\.gz: .*unreadable_file"):
        list(read_source_file(source(on_error="fail"), str(path)))


def test_truncated_gzip_keeps_documents_before_the_cut(tmp_path):
    path = truncated(C4_SAMPLE, tmp_path / "cut.jsonl.gz", 2 / 3)
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert 0 < len(docs) < 10
    (q,) = quarantined
    assert q.reason == "truncated_file" and q.line == len(docs) + 1
    assert q.offset == sum(len(x) for x in c4_lines()[: len(docs)])
    with pytest.raises(InputError, match="truncated_file"):
        list(read_source_file(source(on_error="fail"), str(path)))


def test_flipped_bytes_in_gzip_are_corrupt_compression(tmp_path):
    data = bytearray(C4_SAMPLE.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 64):
        data[i] ^= 0xFF
    path = tmp_path / "flipped.jsonl.gz"
    path.write_bytes(bytes(data))
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert len(docs) < 10
    assert quarantined[-1].reason in ("corrupt_compression", "invalid_json", "invalid_utf8")
    assert any(q.reason == "corrupt_compression" for q in quarantined)


def test_truncated_zstd_keeps_documents_before_the_cut(tmp_path):
    frames = zstd_frames(c4_lines())
    path = tmp_path / "cut.jsonl.zst"
    path.write_bytes(b"".join(frames[:6]) + frames[6][: len(frames[6]) // 2])
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert len(docs) == 6
    (q,) = quarantined
    assert q.reason in ("truncated_file", "corrupt_compression") and q.line == 7


def _zeroed_middle(frame: bytes) -> bytes:
    middle = len(frame) // 2
    return frame[:middle] + bytes(64) + frame[middle + 64 :]


@pytest.mark.parametrize("damage", [_zeroed_middle, block_size_swallowing_the_next_frame])
def test_corrupt_zstd_frame_loses_only_its_own_documents(tmp_path, damage):
    lines = arxiv_lines(300)
    frames = zstd_frames([b"".join(lines[i : i + 100]) for i in (0, 100, 200)])
    path = tmp_path / "papers.jsonl.zst"
    path.write_bytes(frames[0] + damage(frames[1]) + frames[2])
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert [d.text for d in docs] == [orjson.loads(x)["text"] for x in lines[:100] + lines[200:]]
    (q,) = quarantined
    assert q.reason == "corrupt_compression" and q.line is None
    assert f"corrupt zstd frame at compressed byte {len(frames[0])}" in q.excerpt
    assert [d.provenance.line for d in docs] == list(range(1, 201))


def test_not_a_gzip_file_is_quarantined_at_the_start(tmp_path):
    path = tmp_path / "plain.jsonl.gz"
    path.write_bytes(b'{"text": "not compressed"}\n')
    (q,) = read_source_file(source(), str(path))
    assert (q.reason, q.line, q.offset) == ("corrupt_compression", 1, 0)


def test_document_over_the_byte_limit_is_quarantined(tmp_path):
    path = _with_bad_line(tmp_path, orjson.dumps({"text": "é" * 600}) + b"\n")
    docs, quarantined = split(read_source_file(source(max_document_bytes=1000), str(path)))
    too_large = [i for i, line in enumerate(c4_lines()) if len(orjson.loads(line)["text"].encode()) > 1000]
    assert 0 < len(too_large) < 10
    assert [q.reason for q in quarantined] == ["document_too_large"] * (1 + len(too_large))
    assert len(docs) == 10 - len(too_large) and all(len(d.text.encode()) <= 1000 for d in docs)


# Runs in a fresh interpreter that reports how much its resident memory grew: tracemalloc counts what
# allocators ask for, not what they touch, and orjson 3.13 asks for ~700 MB to parse this line while the
# process grows by ~150 MB, as it does with older orjson.
_READ_AND_REPORT_PEAK_GROWTH = """
import sys
from pathlib import Path

import orjson

from curation.readers import read_source_file
from mixes.manifest import SourceConfig


def resident(field):
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith(field + ":"))
    return int(line.split()[1]) * 1024


path, max_bytes = sys.argv[1], int(sys.argv[2])
source = SourceConfig(name="test", paths=["unused"], max_document_bytes=max_bytes)
# Resets the peak (VmHWM) to the current size, so the imports above do not count.
Path("/proc/self/clear_refs").write_text("5")
before = resident("VmRSS")
items = [(type(x).__name__, getattr(x, "reason", None)) for x in read_source_file(source, path)]
sys.stdout.buffer.write(orjson.dumps({"items": items, "growth": resident("VmHWM") - before}))
"""


@pytest.mark.parametrize(
    "max_bytes,growth_limit",
    [(16 * 1024 * 1024, 4 * FIFTY_MB), (1024 * 1024, FIFTY_MB // 4)],
    ids=["parsed-then-rejected", "skipped-in-chunks"],
)
def test_fifty_megabyte_line_is_quarantined_within_a_few_times_its_size(tmp_path, max_bytes, growth_limit):
    lines = c4_lines()
    path = tmp_path / "huge.jsonl"
    with open(path, "wb") as f:
        f.write(lines[0])
        f.write(b'{"text": "' + b"word " * (FIFTY_MB // 5) + b'"}\n')
        f.write(lines[1])
    report = _read_in_child(path, max_bytes)
    assert report["items"] == [["Document", None], ["Quarantine", "document_too_large"], ["Document", None]]
    assert report["growth"] < growth_limit, (max_bytes, report["growth"])


def _read_in_child(path, max_bytes: int) -> dict:
    child = subprocess.run(
        [sys.executable, "-c", _READ_AND_REPORT_PEAK_GROWTH, str(path), str(max_bytes)],
        cwd=REPO,
        capture_output=True,
        check=False,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr.decode(errors="replace")[-2000:]
    return orjson.loads(child.stdout)


def test_every_codec_the_readers_decode_has_a_bomb_test():
    assert set(BOMB_WRITERS) == set(storage.CODECS)


@pytest.mark.parametrize("codec", sorted(BOMB_WRITERS))
def test_decompression_bomb_is_quarantined_in_bounded_memory(tmp_path, codec):
    # One gibibyte of one character, no newline: a line far over the cap, in 64 KB (zstd) to 1 MB (gzip).
    path = write_bomb(tmp_path / f"bomb.jsonl.{codec}", codec, b"a", 1024)
    report = _read_in_child(path, 1024 * 1024)
    assert report["items"] == [["Quarantine", "document_too_large"]]
    assert report["growth"] < 256 * 1024 * 1024, report["growth"]


def test_parquet_row_with_invalid_json_metadata_is_quarantined(tmp_path):
    path = tmp_path / "docs.parquet"
    records = parquet_with_invalid_metadata(path)
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert [(d.provenance.line, d.url) for d in docs] == [(1, records[0]["url"]), (3, records[2]["url"])]
    assert [(q.reason, q.line) for q in quarantined] == [("invalid_json", 2)]
    with pytest.raises(InputError, match=r"docs\.parquet: line 2: invalid_json: column metadata"):
        list(read_source_file(source(on_error="fail"), str(path)))


def test_truncated_parquet_is_quarantined(tmp_path):
    path = truncated(REPO_DATA / "universal_fdedup__sample1.parquet", tmp_path / "cut.parquet", 1 / 2)
    (q,) = read_source_file(source(text_field="contents"), str(path))
    assert q.reason == "corrupt_parquet"


def test_parquet_without_the_text_column_is_quarantined_once(tmp_path):
    (q,) = read_source_file(source(), str(REPO_DATA / "universal_fdedup__sample1.parquet"))
    assert q.reason == "missing_text" and "contents" in q.excerpt


def test_clipped_warc_keeps_the_record_before_the_cut():
    items = list(read_source_file(source(), str(REPO_DATA / "clipped.warc.gz")))
    _, quarantined = split(items)
    assert [q.reason for q in quarantined] == ["truncated_file"]
    assert items[-1] is quarantined[0] and quarantined[0].offset is not None


def test_warc_record_whose_length_misses_the_next_record_is_quarantined_itself():
    # warcio's example-trunc.warc: the response's Content-Length stops two bytes short of its trailer.
    path = shared_corpus("warc/warcio/example-trunc.warc")
    data = path.read_bytes()
    response_offset = data.rindex(b"WARC/1.0", 0, data.index(b"WARC-Type: response"))
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert docs == []
    assert [(q.reason, q.offset) for q in quarantined] == [("corrupt_warc", response_offset)]


@pytest.mark.parametrize("error_bytes", [500, -500, 5_000_000], ids=["long", "short", "past-the-end"])
def test_warc_record_with_a_wrong_content_length_is_quarantined_and_reading_resynchronises(
    tmp_path, error_bytes
):
    path = tmp_path / "wrong-length.warc"
    broken = warc_with_wrong_length(path, 4, error_bytes)
    intact, _ = split(read_source_file(source(), str(SAMPLE_WARC)))
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert [(q.reason, q.offset) for q in quarantined] == [("corrupt_warc", broken)]
    assert [d.id for d in docs] == [d.id for d in intact if d.provenance.offset != broken]
    assert len(docs) == len(intact) - 1


def test_damage_between_warc_records_is_one_row_and_both_neighbours_are_read(tmp_path):
    data, starts = sample_warc_records()
    path = tmp_path / "damaged.warc"
    path.write_bytes(data[: starts[10]] + b"\x00garbage\r\n" * 3 + data[starts[10] :])
    intact, _ = split(read_source_file(source(), str(SAMPLE_WARC)))
    docs, quarantined = split(read_source_file(source(), str(path)))
    assert [(q.reason, q.offset) for q in quarantined] == [("corrupt_warc", starts[10])]
    assert [d.id for d in docs] == [d.id for d in intact]


def test_warc_0_18_from_clueweb09_is_read():
    # WARC/0.18 headers, and HTTP headers ended by a bare LF; 29 HTML responses in EUC-JP.
    docs, quarantined = split(
        read_source_file(source(), str(shared_corpus("warc/resiliparse/clueweb-quirk.warc.gz")))
    )
    assert quarantined == [] and len(docs) == 29
    assert all(d.url.startswith("http://") and d.id.startswith("urn:uuid:") for d in docs)
    # The default extractor keeps the product's description, not the shop's header naming its brand.
    assert "ＰＣ対応のブリーフケース" in docs[0].text


def test_wet_with_invalid_utf8_record_is_quarantined(tmp_path):
    body = gzip.decompress((REPO_DATA / "whirlwind.warc.wet.gz").read_bytes())
    text_start = body.index(b"Escopete - Biquipedia")
    broken = body[:text_start] + b"\xff" + body[text_start + 1 :]
    path = tmp_path / "broken.warc.wet"
    path.write_bytes(broken)
    (q,) = read_source_file(source(), str(path))
    assert q.reason == "invalid_utf8" and q.offset > 0
