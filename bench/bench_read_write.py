"""Read-and-write throughput (docs/s on one core): a plain Python loop against our readers and writers.

JSONL.zst: zstandard + orjson in a bare loop vs `read_source_file` + `DocumentWriter`.
WARC: FastWARC + resiliparse in a bare loop vs the same through our reader. Each run is a child process
pinned with `taskset -c 0`; the median of three runs is reported. Run by hand:

    python bench/bench_read_write.py [--docs 50000] [--workdir /tmp/bench-rw]

The functions are importable, so the Beam pipeline's rows can be measured on the same inputs.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import orjson
import zstandard
from fastwarc.warc import ArchiveIterator, WarcRecordType
from resiliparse.extract.html2text import extract_plain_text
from resiliparse.parse.encoding import bytes_to_str, detect_encoding

from curation.document import Document
from curation.readers import read_source_file
from curation.writers import DocumentWriter
from mixes.manifest import SourceConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPORA = REPO.parent / "shared" / "corpora"
BENCHMARKS = REPO / "BENCHMARKS.md"
HEADING = "## Read and write (readers/writers, no Beam)"
WARC_SAMPLES = ["warc/sample-0000.warc.gz", "warc/sample-0001.warc.gz", "warc/resiliparse/warcfile.warc.gz"]


def make_jsonl_zst_corpus(path: str | Path, n_docs: int) -> int:
    """Repeats the real documents of ../shared/corpora/web (with fresh ids) into a JSONL.zst of n_docs."""
    records = []
    for source_file in sorted((SHARED_CORPORA / "web").glob("*.json*.gz")):
        with gzip.open(source_file) as f:
            records.extend(
                r for r in map(orjson.loads, f) if isinstance(r.get("text"), str) and r["text"].strip()
            )
    with open(path, "wb") as raw, zstandard.ZstdCompressor(level=3).stream_writer(raw) as out:
        for i in range(n_docs):
            record = dict(records[i % len(records)])
            record["id"] = f"bench-{i}"
            out.write(orjson.dumps(record) + b"\n")
    return n_docs


def make_warc_corpus(path: str | Path, copies: int) -> None:
    """Concatenates real per-record-gzip WARCs (a valid multi-member WARC) `copies` times."""
    parts = [(SHARED_CORPORA / p).read_bytes() for p in WARC_SAMPLES]
    with open(path, "wb") as out:
        for _ in range(copies):
            out.writelines(parts)


def plain_loop(path: str | Path, out: str | Path) -> int:
    """Bare zstandard + orjson: read JSONL.zst, write JSONL.zst."""
    n = 0
    with open(path, "rb") as raw_in, open(out, "wb") as raw_out:
        reader = zstandard.ZstdDecompressor().stream_reader(raw_in, read_across_frames=True)
        with zstandard.ZstdCompressor(level=3).stream_writer(raw_out) as writer:
            for line in io.BufferedReader(reader, 1 << 20):
                doc = orjson.loads(line)
                writer.write(orjson.dumps(doc) + b"\n")
                n += 1
    return n


def plain_warc_loop(path: str | Path, out: str | Path) -> int:
    """Bare FastWARC + resiliparse: HTML 200 responses to text, written as JSONL.zst."""
    n = 0
    with (
        open(path, "rb") as raw_in,
        open(out, "wb") as raw_out,
        zstandard.ZstdCompressor(level=3).stream_writer(raw_out) as writer,
    ):
        for record in ArchiveIterator(raw_in, record_types=WarcRecordType.response):
            if record.http_headers.status_code != 200 or record.http_content_type != "text/html":
                continue
            body = record.reader.read()
            text = extract_plain_text(
                bytes_to_str(body, record.http_charset or detect_encoding(body)), main_content=True
            )
            url = record.headers.get("WARC-Target-URI")
            writer.write(
                orjson.dumps({"id": record.record_id, "text": text, "metadata": {"url": url}}) + b"\n"
            )
            n += 1
    return n


def ours(path: str | Path, out_prefix: str | Path) -> int:
    """Our reader and DocumentWriter (jsonl.zst), as plain Python."""
    source = SourceConfig(name="bench", paths=[str(path)])
    n = 0
    with DocumentWriter(str(out_prefix), "jsonl.zst", target_bytes=256 * 1024 * 1024) as writer:
        for item in read_source_file(source, str(path)):
            if isinstance(item, Document):
                writer.write(item.to_dict())
                n += 1
    return n


VARIANTS = {"plain_jsonl": plain_loop, "plain_warc": plain_warc_loop, "ours_jsonl": ours, "ours_warc": ours}


def _run_child(variant: str, path: Path, out: Path) -> dict:
    cmd = ["taskset", "-c", "0", sys.executable, __file__, "--child", variant, str(path), str(out)]
    result = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=REPO)
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child(variant: str, path: str, out: str) -> None:
    start = time.perf_counter()
    docs = VARIANTS[variant](path, out)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"docs": docs, "seconds": seconds, "peak_mb": peak_mb}))


def _measure(variant: str, path: Path, workdir: Path, runs: int = 3) -> dict:
    results = [_run_child(variant, path, workdir / f"out-{variant}") for _ in range(runs)]
    seconds = statistics.median(r["seconds"] for r in results)
    return {
        "docs": results[0]["docs"],
        "docs_per_s": results[0]["docs"] / seconds,
        "peak_mb": max(r["peak_mb"] for r in results),
    }


def _cpu_model() -> str:
    for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _write_section(body: str) -> None:
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n"
    if HEADING in text:
        start = text.index(HEADING)
        following = text.find("\n## ", start + len(HEADING))
        text = text[:start] + body + (text[following + 1 :] if following != -1 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + body
    BENCHMARKS.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--warc-copies", type=int, default=30)
    parser.add_argument("--workdir", default="/tmp/bench-read-write")
    parser.add_argument("--child", nargs=3, metavar=("VARIANT", "INPUT", "OUTPUT"))
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    jsonl = workdir / "web.jsonl.zst"
    warc = workdir / "web.warc.gz"
    make_jsonl_zst_corpus(jsonl, args.docs)
    make_warc_corpus(warc, args.warc_copies)
    rows = []
    for label, path, plain, ours_variant in [
        (
            f"JSONL.zst, {args.docs:,} docs, {jsonl.stat().st_size / 1e6:.1f} MB",
            jsonl,
            "plain_jsonl",
            "ours_jsonl",
        ),
        (f"WARC.gz, {warc.stat().st_size / 1e6:.1f} MB", warc, "plain_warc", "ours_warc"),
    ]:
        base = _measure(plain, path, workdir)
        mine = _measure(ours_variant, path, workdir)
        rows.append((label, "plain Python loop", base, 1.0))
        rows.append(
            (label, "curation readers + DocumentWriter", mine, mine["docs_per_s"] / base["docs_per_s"])
        )
    lines = [
        HEADING,
        "",
        (
            f"Date 2026-11-22; machine: 2 cores, {_cpu_model()}; one core (`taskset -c 0`), median of 3 runs, "
            "each a fresh process; peak RSS is the largest of the 3 (mostly the imports). Inputs: real documents "
            "of `../shared/corpora/web` repeated with fresh ids; real WARCs (dolma samples + resiliparse's CC "
            "excerpt) concatenated. Output: JSONL.zst (level 3). Reproduce: `python bench/bench_read_write.py`."
        ),
        "",
        "| input | implementation | docs | docs/s | ratio to plain loop | peak RSS MB |",
        "|---|---|---|---|---|---|",
    ]
    for label, name, r, ratio in rows:
        lines.append(
            f"| {label} | {name} | {r['docs']:,} | {r['docs_per_s']:,.0f} | {ratio:.2f} | {r['peak_mb']:.0f} |"
        )
    _write_section("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
