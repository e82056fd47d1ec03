"""Filters from installed packages (issue #14 item 6): a package registering a `curation.filters` entry
point is used by its versioned name in a real run, and the lock names its distribution and version."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tomllib
from pathlib import Path

import orjson
import pytest
from conftest import DEMO_DATA, REPO, write_manifest
from helpers_lists import BADWORDS_DIR, fineweb_url_lists

from curation.cli import main
from curation.config import ConfigError
from curation.pipeline import run
from filters.registry import build_filter
from mixes.manifest import load_manifest

PACKAGE = Path(__file__).parent / "plugin_package"


def install(site: Path) -> None:
    """What `pip install --target site` leaves: the module and a dist-info with the entry points."""
    project = tomllib.loads((PACKAGE / "pyproject.toml").read_text())["project"]
    shutil.copytree(PACKAGE / "curation_shouting", site / "curation_shouting")
    dist_info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n"
    )
    entry_points = "".join(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in points.items())
        for group, points in project["entry-points"].items()
    )
    (dist_info / "entry_points.txt").write_text(entry_points)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    site = tmp_path / "site"
    install(site)
    monkeypatch.syspath_prepend(str(site))
    # Beam's worker processes import the filter too.
    monkeypatch.setenv("PYTHONPATH", f"{site}:{REPO}")
    yield site
    sys.modules.pop("curation_shouting", None)


def test_unknown_filter_stays_unknown_without_the_package():
    with pytest.raises(ConfigError, match="unknown filter 'shouting_v1'"):
        build_filter({"use": "shouting_v1"})


def test_installed_filter_is_built_by_name(installed_plugin):
    step = build_filter({"use": "shouting_v1", "max_uppercase_fraction": 0.2})
    assert type(step).__module__ == "curation_shouting" and step.config.max_uppercase_fraction == 0.2


def test_manifest_uses_plugin_and_lock_records_it_with_the_lists(installed_plugin, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("c4-sample.01.json.gz", "c4-sample.02.json.gz", "cc-2019-30-00140.jsonl.gz"):
        shutil.copy(DEMO_DATA / "web" / name, data)
    body = {
        "name": "plugged",
        "version": "1.0.0",
        "seed": 3,
        "sources": [
            {
                "name": "web",
                "paths": ["data/*.gz"],
                "filters": [
                    {"use": "url_blocklist_v1", **fineweb_url_lists()},
                    {"use": "pii_mask_v1"},
                    {"use": "c4_badwords_v1", "words_dir": str(BADWORDS_DIR)},
                    {"use": "shouting_v1", "max_uppercase_fraction": 0.1},
                ],
            }
        ],
        "output": {"path": "out", "tokenizer": str(REPO / "tokenizers/allenai_dolma2.json"), "shard_tokens": 50_000},
    }
    manifest = write_manifest(tmp_path, body)
    stats = run(load_manifest(manifest), ["--direct_num_workers=1"], log=lambda _: None)
    root = tmp_path / "out" / "plugged" / "1.0.0"
    rejections = {row["reason"] for row in _ledger(root)}
    assert {"shouting", "c4_badwords", "url_banned_word"} <= rejections
    web = stats["sources"]["web"]
    assert web["read"] == web["kept_documents"] + web["rejected"] + web["quarantined"]

    lock = orjson.loads((root / "lock.json").read_bytes())
    assert lock["plugins"] == [{"filter": "shouting_v1", "distribution": "curation-shouting", "version": "0.1.0"}]
    lists = {Path(e["uri"]).name: e["sha256"] for e in lock["filter_lists"]}
    assert lists["banned_words.txt"] == hashlib.sha256((REPO / "lists/fineweb-url/banned_words.txt").read_bytes()).hexdigest()
    assert "en.txt" in lists and "zh.txt" in lists and len(lists) == 4 + 28

    # The audit shows what PII masking replaced in a kept page with a phone number (line 9 of c4-sample.02, counted from 1).
    capsys.readouterr()
    assert main(["audit", str(root), "--input", str(data / "c4-sample.02.json.gz"), "--line", "9"]) == 0
    shown = capsys.readouterr().out
    assert "masked by pii_mask_v1: 4 PHONE_NUMBER" in shown
    assert "PHONE_NUMBER at characters" in shown


def _ledger(root: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return pq.read_table(root / "ledger" / "rejections.parquet").to_pylist()
