"""A small real release for the provenance tests (audit, regenerate, diff, card, export): shipped web and
arXiv samples plus one file holding an exact duplicate, a GSM8K test item (contamination), a broken line
(quarantine), a page with an e-mail address and a phone number (PII masking) and nine more copies of another
page (a larger dedup cluster), and, when the quality filter is registered, a source where it drops a short
note; run once per folder with exact dedupe and decontamination against GSM8K and HumanEval (which nothing
matches)."""

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
HUMANEVAL = REPO / "data" / "demo" / "evals" / "HumanEval.jsonl.gz"
QUALITY_FILTER = "gopher_quality_v1"
DUPLICATE_ID = "copy-of-first-c4-document"
CONTAMINATED_ID = "homework-with-gsm8k-test-item"
SHORT_ID = "far-too-short-to-be-prose"
BROKEN_LINE = 3  # 1-based line of the extra file that is not JSON
PII_ID = "page-with-contact-details"
REPEATED_COPIES = 9  # of the second web file's first page, with it a cluster of 10


def first_web_page() -> str:
    """The text of the release's first web page, of which the planted file holds an exact duplicate."""
    return json.loads(gzip.decompress((DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes()).split(b"\n")[0])["text"]


def release_manifest(folder: Path, extra_pages: tuple[dict, ...] = (), **overrides) -> Path:
    """The release's manifest in `folder`, with `extra_pages` appended to the web file of planted cases."""
    body = small_manifest(folder)
    web = folder / "data" / "web"
    repeated = json.loads(gzip.decompress((web / "c4-sample.02.json.gz").read_bytes()).split(b"\n")[0])
    item = json.loads(GSM8K_TEST.read_text().split("\n")[0])
    lines = [
        json.dumps({"id": DUPLICATE_ID, "text": first_web_page()}),
        json.dumps(
            {
                "id": CONTAMINATED_ID,
                "text": f"Homework help, question one. {item['question']} {item['answer']}",
            }
        ),
        '{"id": "broken", "text": ',
        json.dumps(
            {
                "id": PII_ID,
                "text": "Questions about the bocce league go to our secretary. Write to jane.doe@example.org "
                "or call 617-555-0143 on weekday evenings, and we will answer within two days.",
            }
        ),
        *(json.dumps({"id": f"copy-{k}-of-bocce-page", "text": repeated["text"]}) for k in range(REPEATED_COPIES)),
        *map(json.dumps, extra_pages),
    ]
    (web / "extra.json.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0))
    web_source, papers_source = body["sources"]
    web_source |= {
        "origin": "C4 (allenai/OLMo test fixtures)",
        "license": "odc-by",
        "languages": ["en"],
        "filters": [{"use": "pii_mask_v1"}],
    }
    papers_source |= {"origin": "arXiv abstracts (arXiv API metadata)", "license": "cc0-1.0", "languages": ["en"]}
    body["dedupe"] = {"exact": {"scope": "global"}}
    body["decontaminate"] = {
        "evals": [
            {"name": "gsm8k", "paths": [str(GSM8K_TEST)], "text_fields": ["question", "answer"]},
            {"name": "humaneval", "paths": [str(HUMANEVAL)], "text_fields": ["prompt", "canonical_solution"], "id_field": "task_id"},
        ],
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


def build_release(folder: Path, extra_pages: tuple[dict, ...] = (), **overrides) -> Path:
    """The output root of the release in `folder`, run once (later calls reuse the finished output)."""
    root = folder / "out" / "small" / overrides.get("version", "1.0.0")
    if not (root / "lock.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        run(
            load_manifest(release_manifest(folder, extra_pages, **overrides)),
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
