"""The hostile input corpus: one input folder per kind of bad input, each made from the repo's real files
(C4, arXiv, demo WARC, Parquet) at test time, so the repo holds only this script. Its builders are the ones
the reader tests damage their inputs with."""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import zstandard
from conftest import DEMO_DATA, SHARED, link_unopenable_file
from helpers_io import REPO_DATA

C4_SAMPLE = REPO_DATA / "c4-sample.01.json.gz"
SAMPLE_WARC = DEMO_DATA / "warc" / "sample-0000.warc.gz"
CLUEWEB_QUIRK = SHARED / "corpora" / "warc" / "resiliparse" / "clueweb-quirk.warc.gz"
MIB = 1024 * 1024


def c4_lines() -> list[bytes]:
    return gzip.decompress(C4_SAMPLE.read_bytes()).splitlines(keepends=True)


def arxiv_lines(count: int) -> list[bytes]:
    lines = gzip.decompress((DEMO_DATA / "papers" / "arxiv-abstracts-head1000.jsonl.gz").read_bytes())
    return lines.splitlines(keepends=True)[:count]


def with_bad_line(path: Path, bad: bytes) -> Path:
    """C4's ten lines with `bad` as the fourth."""
    lines = c4_lines()
    path.write_bytes(b"".join(lines[:3] + [bad] + lines[3:]))
    return path


def truncated(original: Path, path: Path, kept: float) -> Path:
    data = original.read_bytes()
    path.write_bytes(data[: int(len(data) * kept)])
    return path


def zstd_frames(chunks: list[bytes]) -> list[bytes]:
    cctx = zstandard.ZstdCompressor(write_content_size=True)
    return [cctx.compress(chunk) for chunk in chunks]


def block_size_swallowing_the_next_frame(frame: bytes) -> bytes:
    # The frame's one block (last-block flag and type in the low 3 bits) claims to be 1 MiB long.
    at = zstandard.frame_header_size(frame)
    header = int.from_bytes(frame[at : at + 3], "little")
    assert header & 1 and header >> 3 == len(frame) - at - 3
    return frame[:at] + ((header & 0b111) | MIB << 3).to_bytes(3, "little") + frame[at + 3 :]


# Streaming compressors, so a bomb of gibibytes is written holding only one chunk of it in memory.
BOMB_WRITERS = {
    "zst": lambda f: zstandard.ZstdCompressor(level=1).stream_writer(f),
    "gz": lambda f: gzip.GzipFile(fileobj=f, mode="wb"),
    "bz2": lambda f: bz2.BZ2File(f, "wb", compresslevel=1),
    "xz": lambda f: lzma.LZMAFile(f, "wb", preset=0),  # noqa: SIM115 (opened in a with statement)
}


def write_bomb(path: Path, codec: str, byte: bytes, mebibytes: int, head: bytes = b"") -> Path:
    """`head`, then `mebibytes` MiB of one byte, compressed with `codec`."""
    chunk = byte * (16 * MIB)
    with open(path, "wb") as f, BOMB_WRITERS[codec](f) as bomb:
        bomb.write(head)
        for _ in range(mebibytes // 16):
            bomb.write(chunk)
    return path


def sample_warc_records() -> tuple[bytes, list[int]]:
    """The demo WARC decompressed, and where each of its records starts."""
    data = gzip.decompress(SAMPLE_WARC.read_bytes())
    return data, [m.start() for m in re.finditer(rb"WARC/1\.0\r\n", data)]


def warc_with_wrong_length(path: Path, record: int, error_bytes: int) -> int:
    """The demo WARC with the Content-Length of its `record`th record off by `error_bytes`; returns where
    that record starts."""
    data, starts = sample_warc_records()
    length = re.compile(rb"Content-Length: (\d+)\r\n").search(data, starts[record])
    path.write_bytes(
        data[: length.start(1)] + b"%d" % (int(length.group(1)) + error_bytes) + data[length.end(1) :]
    )
    return starts[record]


def parquet_with_invalid_metadata(path: Path) -> list[dict]:
    """Three C4 records as Parquet whose second row's `metadata` column is cut-off JSON; returns the records."""
    records = [orjson.loads(line) for line in c4_lines()[:3]]
    metadata = [orjson.dumps({"url": r["url"]}).decode() for r in records]
    metadata[1] = '{"url": "cut off'
    pq.write_table(pa.table({"text": [r["text"] for r in records], "metadata": metadata}), path)
    return records


@dataclass(frozen=True)
class Case:
    """One kind of hostile input. `reason` is the quarantine reason it must give (None: it holds no bad
    record, so even an `on_error: fail` run completes); `counted` the per-source stat that counts a file
    yielding no record; `source` the source's own settings."""

    kind: str
    reason: str | None
    counted: str | None = None
    source: dict = field(default_factory=dict)


CASES = [
    Case("truncated_gzip", "truncated_file"),
    Case("truncated_zstd", "truncated_file"),
    Case("corrupt_middle_zstd_frame", "corrupt_compression"),
    Case("zstd_bomb", "document_too_large"),
    Case("gzip_bomb", "document_too_large"),
    Case("newline_bomb", None, counted="empty_files"),
    Case("invalid_json", "invalid_json"),
    Case("invalid_utf8", "invalid_utf8"),
    Case("nul_bytes", "invalid_json"),
    Case("huge_line", "document_too_large"),
    Case("text_not_a_string", "non_string_text"),
    Case("id_not_a_string", "invalid_id"),
    Case("truncated_parquet", "corrupt_parquet", source={"text_field": "contents"}),
    Case("parquet_invalid_json_metadata", "invalid_json"),
    Case("warc_wrong_content_length", "corrupt_warc"),
    Case("warc_0_18", None),
    Case("empty_file", None, counted="empty_files"),
    Case("blank_lines", None, counted="empty_files"),
    Case("unreadable_file", "unreadable_file"),
    Case("symlink_out_of_folder", None, counted="skipped_symlinks"),
]
# Bombs big enough that decoding one whole would pass the memory bound the tests state.
BOMB_MEBIBYTES = 2048


def _write(kind: str, folder: Path) -> list[str] | None:
    """Writes `kind`'s input into `folder`; returns the source's paths unless they are the folder's glob."""
    c4 = c4_lines()
    if kind == "truncated_gzip":
        truncated(C4_SAMPLE, folder / "cut.jsonl.gz", 2 / 3)
    elif kind == "truncated_zstd":
        frames = zstd_frames(c4)
        (folder / "cut.jsonl.zst").write_bytes(b"".join(frames[:6]) + frames[6][: len(frames[6]) // 2])
    elif kind == "corrupt_middle_zstd_frame":
        lines = arxiv_lines(300)
        frames = zstd_frames([b"".join(lines[i : i + 100]) for i in (0, 100, 200)])
        (folder / "papers.jsonl.zst").write_bytes(
            frames[0] + block_size_swallowing_the_next_frame(frames[1]) + frames[2]
        )
    elif kind == "zstd_bomb":
        write_bomb(folder / "bomb.jsonl.zst", "zst", b"a", BOMB_MEBIBYTES, head=c4[0])
    elif kind == "gzip_bomb":
        write_bomb(folder / "bomb.jsonl.gz", "gz", b"a", BOMB_MEBIBYTES, head=c4[0])
    elif kind == "newline_bomb":
        write_bomb(folder / "newlines.jsonl.gz", "gz", b"\n", 1024)
    elif kind == "invalid_json":
        with_bad_line(folder / "docs.jsonl", b'{"text": "cut off\n')
    elif kind == "invalid_utf8":
        with_bad_line(folder / "docs.jsonl", b'{"text": "caf\xe9 latin-1"}\n')
    elif kind == "nul_bytes":
        with_bad_line(folder / "docs.jsonl", b'{"text": "a\x00b"}' + bytes(200) + b"\n")
    elif kind == "huge_line":
        with_bad_line(folder / "docs.jsonl", b'{"text": "' + b"word " * (24 * MIB // 5) + b'"}\n')
    elif kind == "text_not_a_string":
        with_bad_line(folder / "docs.jsonl", b'{"text": {"nested": "object"}}\n')
    elif kind == "id_not_a_string":
        with_bad_line(folder / "docs.jsonl", b'{"id": ["a", "list"], "text": "an id that is a list"}\n')
    elif kind == "truncated_parquet":
        truncated(REPO_DATA / "universal_fdedup__sample1.parquet", folder / "cut.parquet", 1 / 2)
    elif kind == "parquet_invalid_json_metadata":
        parquet_with_invalid_metadata(folder / "docs.parquet")
    elif kind == "warc_wrong_content_length":
        warc_with_wrong_length(folder / "wrong-length.warc", 4, 500)
    elif kind == "warc_0_18":
        shutil.copy(CLUEWEB_QUIRK, folder)
    elif kind == "empty_file":
        (folder / "empty.jsonl").write_bytes(b"")
    elif kind == "blank_lines":
        (folder / "blank.jsonl").write_bytes(b"\n \r\n\t\n" * 1000)
    elif kind == "unreadable_file":
        # Named outright: as root the file is a link to sysfs, which a glob would rightly not follow.
        return [str(link_unopenable_file(folder / "locked.jsonl.gz"))]
    elif kind == "symlink_out_of_folder":
        secret = folder.parent / "elsewhere.jsonl"
        secret.write_bytes(c4[0])
        (folder / "secret.jsonl").symlink_to(secret)
        (folder / "c4.jsonl").write_bytes(b"".join(c4[1:]))
    else:
        raise ValueError(f"no builder for {kind}")
    return None


def available(case: Case) -> str | None:
    """Why `case` cannot be built here, or None."""
    if case.kind == "warc_0_18" and not CLUEWEB_QUIRK.exists():
        return f"{CLUEWEB_QUIRK} is absent: the WARC/0.18 case reads the team's shared corpora"
    return None


def build(root: Path, cases: list[Case] = CASES) -> dict[str, dict]:
    """Writes each case's input under `root/<kind>/` and returns each kind's manifest source."""
    sources = {}
    for case in cases:
        folder = root / case.kind
        folder.mkdir(parents=True)
        paths = _write(case.kind, folder) or [str(folder / "*")]
        sources[case.kind] = {"name": case.kind, "paths": paths, **case.source}
    return sources
