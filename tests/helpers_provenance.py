"""A small real release for the provenance tests (audit, regenerate, diff, card): shipped web and arXiv
samples plus one file holding an exact duplicate, a GSM8K test item (contamination) and a broken line
(quarantine), and, when the quality filter is registered, a source where it drops a short note; run once per
folder with exact dedupe and decontamination."""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from conftest import DEMO_DATA, REPO, small_manifest, write_manifest

from curation.pipeline import run
from filters.registry import FILTERS
from mixes.manifest import load_manifest

GSM8K_TEST = REPO / "data" / "demo" / "evals" / "gsm8k-test.jsonl"
QUALITY_FILTER = "gopher_quality_v1"
DUPLICATE_ID = "copy-of-first-c4-document"
CONTAMINATED_ID = "homework-with-gsm8k-test-item"
SHORT_ID = "far-too-short-to-be-prose"
BROKEN_LINE = 3  # 1-based line of the extra file that is not JSON


def release_manifest(folder: Path, **overrides) -> Path:
    body = small_manifest(folder)
    web = folder / "data" / "web"
    first = json.loads(gzip.decompress((web / "c4-sample.01.json.gz").read_bytes()).split(b"\n")[0])
    item = json.loads(GSM8K_TEST.read_text().split("\n")[0])
    lines = [
        json.dumps({"id": DUPLICATE_ID, "text": first["text"]}),
        json.dumps(
            {
                "id": CONTAMINATED_ID,
                "text": f"Homework help, question one. {item['question']} {item['answer']}",
            }
        ),
        '{"id": "broken", "text": ',
    ]
    (web / "extra.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    body["dedupe"] = {"exact": {"scope": "global"}}
    body["decontaminate"] = {
        "evals": [{"name": "gsm8k", "paths": [str(GSM8K_TEST)], "text_fields": ["question", "answer"]}],
        "action": "drop_document",
    }
    if QUALITY_FILTER in FILTERS:
        notes = folder / "data" / "notes"
        notes.mkdir()
        unused = DEMO_DATA / "web" / "c4-sample.03.json.gz"  # not among the web inputs: no cross-source duplicate
        second = json.loads(gzip.decompress(unused.read_bytes()).split(b"\n")[0])
        kept_and_short = [
            {"id": "long-prose", "text": second["text"]},
            {"id": SHORT_ID, "text": "Click here."},
        ]
        (notes / "notes.json.gz").write_bytes(
            gzip.compress("".join(json.dumps(r) + "\n" for r in kept_and_short).encode(), mtime=0)
        )
        body["sources"].append(
            {"name": "notes", "paths": ["data/notes/*.json.gz"], "filters": [{"use": QUALITY_FILTER}]}
        )
    body.update(overrides)
    return write_manifest(folder, body)


def build_release(folder: Path, **overrides) -> Path:
    """The output root of the release in `folder`, run once (later calls reuse the finished output)."""
    root = folder / "out" / "small" / overrides.get("version", "1.0.0")
    if not (root / "lock.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        run(
            load_manifest(release_manifest(folder, **overrides)),
            ["--direct_num_workers=1"],
            log=lambda _: None,
        )
    return root


def run_command(module, *argv: str) -> int:
    """One subcommand module through argparse, as `curation` runs it."""
    parser = argparse.ArgumentParser()
    module.add_parser(parser.add_subparsers(dest="command"))
    args, extra = parser.parse_known_args([module.__name__.rsplit(".", 1)[-1].removesuffix("_cmd"), *argv])
    args.beam_args = extra
    return int(args.handler(args) or 0)
