"""Audit of a real small release: every token range leads back to its source text, and a document dropped
by each stage (or never read) is explained."""

from __future__ import annotations

import gzip
import json

import orjson
import pytest
from helpers_provenance import (
    BROKEN_LINE,
    CONTAMINATED_ID,
    DUPLICATE_ID,
    QUALITY_FILTER,
    SHORT_ID,
    build_release,
    run_command,
)

from curation.audit import AuditError, AuditIndex
from curation.commands import audit_cmd
from curation.lock import pool_uris, read_lock
from curation.stages.audit_index import build_audit_index
from filters.registry import FILTERS
from mixes.shards import iter_documents, read_shard
from tokenizers import Tokenizer


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.getbasetemp() / "provenance-release")


def input_text(uri, line: int) -> str:
    """The text of a JSONL input record, read straight from the input file (1-based line)."""
    with gzip.open(uri, "rt") as f:
        for number, raw in enumerate(f, start=1):
            if number == line:
                return json.loads(raw)["text"]
    raise AssertionError(f"{uri} has no line {line}")


def masked(text: str, attributes: dict) -> str:
    """`text` with the spans pii_mask_v1 recorded (in the text before masking) replaced by its placeholders."""
    for start, end, kind in reversed(attributes.get("pii_mask_v1/masked_spans", [])):
        text = f"{text[:start]}|||{kind}|||{text[end:]}"
    return text


def test_every_token_range_leads_to_its_source_text(release):
    lock = read_lock(str(release / "lock.json"))
    # The lock and the audit records name files relative to the manifest's folder.
    manifest_folder = release.parents[2]
    tokenizer = Tokenizer.from_file(str(manifest_folder / lock["tokenizer"]["uri"]))
    checked = 0
    with AuditIndex(str(release)) as index:
        for shard_path in sorted((release / "shards").glob("part-*.npy")):
            shard = read_shard(shard_path)
            start = 0
            for doc, tokens in iter_documents(shard):
                for offset in (start, start + len(tokens) - 1):
                    hit = index.at_token(shard_path.stem, offset)
                    assert (hit.placement["id"], hit.record["source"]) == (doc.doc_id, doc.source)
                    assert (hit.placement["start"], hit.placement["end"]) == (start, start + len(tokens))
                text = index.text(hit.record, hit.placement["id"])
                assert (
                    tokenizer.decode(tokens[:-1].tolist(), skip_special_tokens=False) == text
                )  # the last token is the appended EOS
                read = input_text(manifest_folder / hit.record["uri"], hit.record["line"])
                assert text == masked(read, hit.record.get("attributes") or {})
                start += len(tokens)
                checked += 1
    stats = orjson.loads((release / "stats.json").read_bytes())
    assert checked == stats["totals"]["mixed_documents"] > 1000


def test_token_past_the_end_of_a_shard_is_refused(release):
    shard = read_shard(release / "shards" / "part-00000.npy")
    with AuditIndex(str(release)) as index, pytest.raises(AuditError, match="past the end"):
        index.at_token(0, len(shard.tokens))


def test_audit_command_prints_document_input_url_and_text(release, capsys):
    assert run_command(audit_cmd, str(release), "--shard", "0", "--offset", "0", "--text") == 0
    out = capsys.readouterr().out
    first = next(iter_documents(read_shard(release / "shards" / "part-00000.npy")))[0]
    assert f"document {first.doc_id} (source {first.source}" in out
    assert f"{first.uri} (line {first.line})" in out
    assert "--- text" in out


def test_exact_duplicate_names_its_cluster_and_kept_representative(release):
    with AuditIndex(str(release)) as index:
        record = index.document(DUPLICATE_ID, "web")
        assert record["status"] == "dropped"
        assert [d["stage"] for d in record["decisions"]] == ["dedupe"]
        kept = index.document(record["cluster"]["kept_id"], record["cluster"]["kept_source"])
    assert kept["status"] == "kept" and kept["placements"]
    assert kept["cluster"]["cluster_id"] == record["cluster"]["cluster_id"]
    assert record["uri"].endswith("extra.json.gz") and record["line"] == 1


def test_contaminated_document_names_benchmark_item_and_score(release, capsys):
    assert run_command(audit_cmd, str(release), "--doc", CONTAMINATED_ID) == 0
    out = capsys.readouterr().out
    assert "dropped by decontaminate" in out and "benchmark gsm8k" in out and "score" in out


def test_quality_rejection_names_filter_reason_and_score(release):
    if QUALITY_FILTER not in FILTERS:
        pytest.skip(f"{QUALITY_FILTER} is not in filters/registry.py FILTERS yet, so no run drops by quality")
    with AuditIndex(str(release)) as index:
        record = index.document(SHORT_ID, "notes")
    assert record["status"] == "dropped"
    assert record["decisions"][0]["stage"] == "quality" and record["decisions"][0]["score"] is not None


def test_quarantined_record_is_found_by_its_input_line(release, capsys):
    uri = str(release.parents[2] / "data" / "web" / "extra.json.gz")
    assert run_command(audit_cmd, str(release), "--input", uri, "--line", str(BROKEN_LINE), "--json") == 0
    [record] = orjson.loads(capsys.readouterr().out)
    assert (record["status"], record["reason"]) == ("quarantined", "invalid_json")


def test_unknown_id_or_wrong_source_finds_nothing(release):
    with AuditIndex(str(release)) as index:
        with pytest.raises(AuditError, match="no document"):
            index.document("no-such-id")
        assert index.documents(DUPLICATE_ID, "papers") == []


def test_index_rebuilt_from_the_output_is_byte_identical(release):
    before = {p.name: p.read_bytes() for p in (release / "audit").rglob("*") if p.is_file()}
    lock = read_lock(str(release / "lock.json"))
    build_audit_index(str(release), pool_uris(lock, str(release)))
    after = {p.name: p.read_bytes() for p in (release / "audit").rglob("*") if p.is_file()}
    assert before == after
