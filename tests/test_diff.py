"""Diff between two real releases and between two manifests: config field paths, documents and tokens per source."""

from __future__ import annotations

import pytest
import yaml
from helpers_provenance import build_release, release_manifest

from curation.diff import config_changes, diff, mixed_tokens
from curation.pipeline import run
from mixes.manifest import load_manifest


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.getbasetemp() / "provenance-release")


def test_manifest_changes_are_named_by_field_path(tmp_path):
    before = yaml.safe_load(release_manifest(tmp_path).read_text())
    after = dict(yaml.safe_load(release_manifest(tmp_path / "b").read_text()), version="1.1.0", seed=8)
    after["sources"][0]["paths"] = ["data/web/c4-sample.01.json.gz"]
    after["dedupe"]["exact"]["scope"] = "per_source"
    paths = [c.path for c in config_changes(before, after)]
    assert paths == ["dedupe.exact.scope", "seed", "sources[web].paths", "version"]


def test_removed_input_shows_as_documents_and_tokens_removed(release, tmp_path):
    folder = release.parents[2]
    narrowed = dict(yaml.safe_load((folder / "manifest.yaml").read_text()), version="1.1.0")
    narrowed["sources"][0]["paths"] = ["data/web/c4-sample.01.json.gz"]
    (folder / "narrowed.yaml").write_text(yaml.safe_dump(narrowed, sort_keys=False))
    run(load_manifest(folder / "narrowed.yaml"), ["--direct_num_workers=1"], log=lambda _: None)
    other = release.parent / "1.1.0"
    out = diff(str(release), str(other))
    before, after = mixed_tokens(str(release)), mixed_tokens(str(other))
    removed = before["web"].keys() - after["web"].keys()
    assert removed and not after["web"].keys() - before["web"].keys()
    web_row = next(line for line in out.splitlines() if line.startswith("web "))
    numbers = [int(n.replace(",", "")) for n in web_row.split()[1:]]
    assert numbers == [
        len(before["web"]),
        len(after["web"]),
        0,
        len(removed),
        0,
        sum(before["web"].values()),
        sum(after["web"].values()),
        0,
        sum(before["web"][i] for i in removed),
    ]
    assert "~ sources[web].paths" in out and "~ version: '1.0.0' -> '1.1.0'" in out
    papers_row = next(line for line in out.splitlines() if line.startswith("papers "))
    assert papers_row.split()[3:6] == ["0", "0", "0"]


def test_manifests_without_outputs_compare_config_only(tmp_path):
    a = release_manifest(tmp_path / "a")
    b = release_manifest(tmp_path / "b", seed=9)
    assert "documents: not compared" in diff(str(a), str(b))
