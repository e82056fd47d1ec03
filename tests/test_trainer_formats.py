"""The shards of a real small mix read by the trainers' own readers, in both output formats: OLMo-core's
NumpyFSLDataset and its padded and packed variants over `.npy` + Dolma's `.csv.gz` (when ai2-olmo-core is
installed), Megatron-LM's IndexedDataset over `.bin` + `.idx` (when megatron-core is), and independently of
both, every document's token range compared with what `curation audit` reports for it. The session's small
mix (helpers_mix.py) and the same manifest in Megatron's format, built from its caches, serve every test here."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import importlib.util
import itertools
import shutil
import struct
from pathlib import Path

import numpy as np
import orjson
import pytest
import yaml
from conftest import TOKENIZER, write_manifest

from curation.audit import AuditIndex
from curation.layout import RunLayout
from curation.lock import read_lock
from curation.pipeline import curate, decide, prepare, run, tokenize
from curation.regenerate import compare_outputs
from curation.stages.mix import mix_and_write
from mixes.manifest import load_manifest
from mixes.shards import iter_documents, read_shard
from mixes.tokenizer import load_tokenizer

FORMATS = ("numpy", "megatron")
ONE_WORKER = ["--direct_num_workers=1", "--direct_running_mode=in_memory"]
TWO_WORKERS = ["--direct_num_workers=2"]


@pytest.fixture(scope="module")
def releases(demo_mix) -> dict[str, Path]:
    """Per format, the release folder of the session's small mix (numpy, the default, written by two worker
    processes) and of the same manifest asking for Megatron's format, built beside it from its caches by one
    in-process worker (a few seconds, where worker processes would take most of a minute)."""
    numpy_root, _ = demo_mix
    folder = numpy_root.parents[2]
    body = dict(yaml.safe_load((folder / "manifest.yaml").read_text()), name="mix-check-megatron")
    body["output"] = dict(body["output"], format="megatron")
    run(load_manifest(write_manifest(folder, body, "megatron.yaml")), ONE_WORKER, log=lambda _: None)
    return {"numpy": numpy_root, "megatron": folder / "out" / body["name"] / "1.0.0"}


def manifest_of(root: Path) -> Path:
    return root.parents[2] / ("megatron.yaml" if root.parent.name.endswith("megatron") else "manifest.yaml")


def read_idx(path: Path) -> tuple[str, np.ndarray, np.ndarray, np.ndarray]:
    """Megatron's .idx as its indexed_dataset.py documents it: magic, version, dtype code, sequence and
    document counts, then sequence lengths (int32), byte pointers (int64) and document indices (int64)."""
    data = path.read_bytes()
    assert data[:9] == b"MMIDIDX\x00\x00"
    version, dtype_code, sequences, documents = struct.unpack_from("<QBQQ", data, 9)
    assert version == 1
    offset = 9 + struct.calcsize("<QBQQ")
    lengths = np.frombuffer(data, "<i4", sequences, offset)
    pointers = np.frombuffer(data, "<i8", sequences, offset + lengths.nbytes)
    document_indices = np.frombuffer(data, "<i8", documents, offset + lengths.nbytes + pointers.nbytes)
    assert offset + lengths.nbytes + pointers.nbytes + document_indices.nbytes == len(data)
    return {4: "int32", 8: "uint16"}[dtype_code], lengths, pointers, document_indices


def boundaries(shard_file: Path) -> list[tuple[int, int]]:
    """(start, end) of each document, from the file the shard's trainer reads them from."""
    if shard_file.suffix == ".npy":
        with gzip.open(shard_file.with_suffix(".csv.gz"), "rt", newline="") as f:
            return [(int(row[0]), int(row[1])) for row in csv.reader(f)]
    dtype, lengths, pointers, document_indices = read_idx(shard_file.with_suffix(".idx"))
    assert np.array_equal(document_indices, np.arange(len(lengths) + 1))
    return [
        (int(p) // np.dtype(dtype).itemsize, int(p) // np.dtype(dtype).itemsize + int(n))
        for p, n in zip(pointers, lengths)
    ]


def token_files(root: Path, format: str) -> list[Path]:
    return sorted((root / "shards").glob("part-*.npy" if format == "numpy" else "part-*.bin"))


def audited_shards(root: Path, format: str) -> list[list[list[int]]]:
    """Per token file, the tokens of its documents as `curation audit` gives them: the text audit reports for
    the token at each document's start, walking from placement to placement, tokenized, EOS appended. It uses
    neither the shard's tokens nor its boundary files, so a trainer's reader compared with it is compared with
    audit."""
    tokenizer = load_tokenizer(TOKENIZER, "literal")
    shards = []
    with AuditIndex(str(root)) as audit:
        for path in token_files(root, format):
            size = path.stat().st_size // np.dtype(read_shard(path).sidecar["dtype"]).itemsize
            texts, start = [], 0
            while start < size:
                hit = audit.at_token(path.stem, start)
                texts.append(audit.text(hit.record, hit.placement["id"]))
                start = hit.placement["end"]
            shards.append([[*ids, tokenizer.eos_id] for ids in tokenizer.encode_batch(texts)])
    return shards


@pytest.mark.parametrize("format", FORMATS)
def test_every_documents_token_range_holds_the_text_audit_reports(releases, format):
    root = releases[format]
    tokenizer = load_tokenizer(TOKENIZER, "literal")
    checked = 0
    with AuditIndex(str(root)) as audit:
        for path in token_files(root, format):
            tokens = np.fromfile(path, dtype=read_shard(path).sidecar["dtype"])
            ranges = boundaries(path)
            assert ranges[0][0] == 0 and ranges[-1][1] == len(tokens)
            assert all(end == next_start for (_, end), (next_start, _) in itertools.pairwise(ranges))
            texts = []
            for start, end in ranges:
                first, last = audit.at_token(path.stem, start), audit.at_token(path.stem, end - 1)
                assert first.placement == last.placement
                assert (first.placement["start"], first.placement["end"]) == (start, end)
                texts.append(audit.text(first.record, first.placement["id"]))
            for (start, end), ids in zip(ranges, tokenizer.encode_batch(texts), strict=True):
                assert tokens[end - 1] == tokenizer.eos_id
                assert tokens[start : end - 1].tolist() == ids.tolist()
                checked += 1
    stats = orjson.loads((root / "stats.json").read_bytes())
    assert checked == stats["totals"]["mixed_documents"] > 100
    assert len(token_files(root, format)) >= 3


def test_both_formats_hold_the_same_documents_in_the_same_order(releases):
    numpy_shards, megatron_shards = (token_files(releases[f], f) for f in FORMATS)
    assert len(numpy_shards) == len(megatron_shards)
    for a, b in zip(numpy_shards, megatron_shards):
        assert boundaries(a) == boundaries(b)
        assert np.array_equal(np.fromfile(a, "<u4"), np.fromfile(b, "<i4"))
        assert (a.with_suffix(".index")).read_bytes() == (b.with_suffix(".index")).read_bytes()


@pytest.mark.parametrize("format", FORMATS)
def test_lock_records_every_shard_file_and_the_sidecar_vouches_for_it(releases, format):
    root = releases[format]
    outputs = {e["uri"]: e for e in read_lock(str(root / "lock.json"))["outputs"]}
    suffixes = (
        (".npy", ".csv.gz", ".index", ".json") if format == "numpy" else (".bin", ".idx", ".index", ".json")
    )
    shard_files = sorted(p for p in (root / "shards").iterdir())
    assert {p.name.split(".", 1)[1] for p in shard_files} == {s[1:] for s in suffixes}
    for path in shard_files:
        entry = outputs[f"shards/{path.name}"]
        assert (
            entry["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            and entry["size"] == path.stat().st_size
        )
    for sidecar in (root / "shards").glob("*.json"):
        read_shard(sidecar, verify=True)


@pytest.mark.parametrize("format", FORMATS)
def test_shards_are_byte_identical_whether_one_or_two_workers_write_them(releases, format, tmp_path):
    root = releases[format]
    # Each release was written with the other worker count (see `releases`).
    beam_args = ONE_WORKER if format == "numpy" else TWO_WORKERS
    ctx = prepare(load_manifest(manifest_of(root)), beam_args, log=lambda _: None)
    pools = curate(ctx)
    cached = tokenize(ctx, pools, *decide(ctx, pools))
    m = ctx.manifest
    rewritten = dataclasses.replace(ctx, layout=RunLayout.for_manifest(str(tmp_path), m.name, m.version))
    mix_and_write(rewritten, cached)
    written = {p.name: p.read_bytes() for p in sorted(Path(rewritten.layout.shards_dir).iterdir())}
    assert len(written) >= 12
    assert written == {p.name: p.read_bytes() for p in sorted((root / "shards").iterdir())}


@pytest.mark.skipif(importlib.util.find_spec("olmo_core") is None, reason="ai2-olmo-core is not installed")
def test_olmo_core_datasets_read_every_token_of_the_shards(releases, tmp_path, monkeypatch):
    from olmo_core.data import NumpyFSLDataset, NumpyPackedFSLDataset, NumpyPaddedFSLDataset, TokenizerConfig

    # Boundaries from the .csv.gz, as OLMo-core must take them for remote shards, in this process's worker.
    monkeypatch.setenv("OLMO_DATA_PREP_USE_ARRAY_IF_LOCAL", "false")
    monkeypatch.setenv("OLMO_DATA_PREP_WORKERS", "1")
    root = releases["numpy"]
    paths = token_files(root, "numpy")
    sidecar = read_shard(paths[0]).sidecar
    # The demo's tokenizer is OLMo 2's: OLMo-core's own config for it must agree with the shards.
    dolma2 = TokenizerConfig.dolma2()
    assert (dolma2.eos_token_id, dolma2.vocab_size) == (sidecar["eos_id"], sidecar["vocab_size"])
    common = {
        "pad_token_id": dolma2.pad_token_id,
        "eos_token_id": dolma2.eos_token_id,
        "vocab_size": dolma2.vocab_size,
        "dtype": np.uint32,
    }
    # What OLMo-core reads is compared with what `curation audit` reports, token for token.
    audited = audited_shards(root, "numpy")
    shard_tokens = [np.array([t for document in shard for t in document], "<u4") for shard in audited]
    documents = [np.array(document, "<u4") for shard in audited for document in shard]
    assert [len(t) for t in shard_tokens] == [p.stat().st_size // 4 for p in paths]
    sequence_length = 1024

    fsl = NumpyFSLDataset(*paths, sequence_length=sequence_length, **common)
    fsl.work_dir = tmp_path / "fsl"
    fsl.prepare()
    expected = [
        t[i : i + sequence_length]
        for t in shard_tokens
        for i in range(0, len(t) - sequence_length + 1, sequence_length)
    ]
    assert len(fsl) == len(expected)
    for i, instance in enumerate(expected):
        assert fsl[i]["input_ids"].tolist() == instance.tolist()

    padded = NumpyPaddedFSLDataset(*paths, sequence_length=sequence_length, **common)
    padded.work_dir = tmp_path / "padded"
    padded.prepare()
    assert len(padded) == len(documents)
    for i, document in enumerate(documents):
        ids = padded[i]["input_ids"]
        assert ids[: min(len(document), sequence_length)].tolist() == document[:sequence_length].tolist()

    packed = NumpyPackedFSLDataset(
        *paths, sequence_length=sequence_length, generate_doc_lengths=True, use_array_if_local=False, **common
    )
    packed.work_dir = tmp_path / "packed"
    packed.prepare()
    pieces = []
    for i in range(len(packed)):
        item = packed[i]
        ids, start = item["input_ids"].tolist(), 0
        for length in item["doc_lens"].tolist():
            pieces.append(tuple(ids[start : start + length]))
            start += length
    # Packing reorders documents and cuts each to the sequence length; every one is there once.
    packed_pieces = sorted(p for p in pieces if p and set(p) != {dolma2.pad_token_id})
    assert packed_pieces == sorted(tuple(d[:sequence_length].tolist()) for d in documents)


@pytest.mark.skipif(importlib.util.find_spec("megatron") is None, reason="megatron-core is not installed")
def test_megatron_core_reads_every_document_and_writes_the_same_files(releases, tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset, IndexedDatasetBuilder

    root = releases["megatron"]
    # What Megatron reads is compared with what `curation audit` reports, token for token.
    for path, documents in zip(token_files(root, "megatron"), audited_shards(root, "megatron"), strict=True):
        dataset = IndexedDataset(str(path.with_suffix("")))
        assert len(dataset) == len(documents) and dataset.document_indices.tolist() == list(
            range(len(documents) + 1)
        )
        for i, tokens in enumerate(documents):
            assert dataset[i].tolist() == tokens
        # Megatron's own builder, given the same documents, writes the same two files byte for byte.
        import torch

        builder = IndexedDatasetBuilder(str(tmp_path / f"{path.stem}.bin"), dtype=dataset.index.dtype)
        for tokens in documents:
            builder.add_document(torch.tensor(tokens, dtype=torch.int64), [len(tokens)])
        builder.finalize(str(tmp_path / f"{path.stem}.idx"))
        for suffix in (".bin", ".idx"):
            assert (tmp_path / f"{path.stem}{suffix}").read_bytes() == path.with_suffix(suffix).read_bytes()


@pytest.mark.parametrize("format", FORMATS)
def test_regenerate_names_the_first_document_whose_tokens_differ(releases, format, tmp_path):
    root = releases[format]
    rebuilt = tmp_path / "rebuilt"
    shutil.copytree(root, rebuilt)
    tokens_file = token_files(rebuilt, format)[1]
    record, _ = list(iter_documents(read_shard(tokens_file)))[3]
    start = boundaries(tokens_file)[3][0]
    itemsize = np.dtype(read_shard(tokens_file).sidecar["dtype"]).itemsize
    with tokens_file.open("r+b") as f:
        f.seek(start * itemsize)
        f.write(bytes(itemsize))
    differences = compare_outputs(read_lock(str(root / "lock.json")), str(root), str(rebuilt))
    assert [d.path for d in differences] == [f"shards/{tokens_file.name}"]
    assert differences[0].first_differing_document.startswith(f"#3 {record.doc_id} (source {record.source}")
