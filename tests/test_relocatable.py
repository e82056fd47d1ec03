"""Releases that regenerate anywhere (#16 item 2): a copy of a small real manifest and its data at another path
writes a byte-identical release; a moved release and a data folder moved apart from it regenerate from
inputs found with --input-root (a root that holds no locked input is refused in one line); stage two reuses
stage one's pools; outputs respect the umask."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import TOKENIZER, small_manifest, write_manifest
from helpers_provenance import GSM8K_TEST, build_release, run_command

from curation.commands import regenerate_cmd
from curation.errors import InputError
from curation.pipeline import run
from curation.places import current_location, parse_move
from curation.regenerate import InputDriftError
from mixes.manifest import load_manifest


def self_contained(folder: Path) -> Path:
    """The provenance release's manifest with its tokenizer and eval set inside `folder` too, so every path it
    names is relative; built once, its release folder returned."""
    folder.mkdir(parents=True)
    shutil.copy(TOKENIZER, folder / "tokenizer.json")
    shutil.copy(GSM8K_TEST, folder / "gsm8k.jsonl")
    return build_release(
        folder,
        output={"path": "out", "tokenizer": "tokenizer.json", "shard_tokens": 50_000},
        decontaminate={
            "evals": [{"name": "gsm8k", "paths": ["gsm8k.jsonl"], "text_fields": ["question", "answer"]}],
            "action": "drop_document",
        },
    )


def files(root: Path) -> dict[str, bytes]:
    """Every file of a release but its worker logs."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not p.relative_to(root).as_posix().startswith("logs/")
    }


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return self_contained(tmp_path_factory.mktemp("first") / "tree")


def test_a_copy_at_another_path_writes_a_byte_identical_release(release, tmp_path):
    other = self_contained(tmp_path / "somewhere" / "deeper" / "tree")
    ours, theirs = files(release), files(other)
    assert "lock.json" in ours and len(ours) > 40
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []
    for content in ours.values():
        assert str(release.parents[2]).encode() not in content


def move(release: Path, to: Path) -> Path:
    """The release's whole output folder moved to `to`, its inputs left where they were."""
    shutil.move(str(release.parents[1]), str(to))
    return to / "small" / "1.0.0"


def test_a_moved_release_and_data_folder_regenerate_with_input_roots(release, tmp_path, capsys):
    """The output folder moved, and the data folder apart from it (as the README's
    `--input-root ../../data=/mnt/mirror/data`, named as the lock names it: here `data`, beside the manifest).
    One rebuild checks both forms."""
    tree = release.parents[2]
    locked = files(release)
    moved = move(release, tmp_path / "elsewhere" / "out")
    mirror = tmp_path / "mnt" / "mirror" / "data"
    shutil.move(str(tree / "data"), str(mirror))
    try:
        with pytest.raises(InputDriftError) as refused:
            run_command(regenerate_cmd, str(moved / "lock.json"), "--verify", "--quiet", "--direct_num_workers=1")
        message = str(refused.value)
        assert "\n" not in message
        assert message.startswith("data/web/c4-sample.01.json.gz: missing, looked for at ")
        assert "--input-root OLD=NEW" in message and "such as data" in message

        # A root the lock names no file under would change nothing: a typo, refused before anything moves.
        with pytest.raises(InputError) as mistyped:
            run_command(regenerate_cmd, str(moved / "lock.json"), "--quiet", "--input-root", f".={tree}", "--input-root", f"dta={mirror}")
        assert str(mistyped.value) == (
            f"--input-root dta={mirror}: the lock names no file under dta; give OLD as the lock names a folder of "
            "its inputs (such as data), or `.` for the manifest's folder itself"
        )
        assert moved.exists() and not (moved.parent / "1.0.0.previous").exists()

        code = run_command(
            regenerate_cmd,
            str(moved / "lock.json"),
            "--verify",
            "--quiet",
            "--input-root",
            f".={tree}",
            "--input-root",
            f"data={mirror}",
            "--direct_num_workers=1",
        )
        assert code == 0, capsys.readouterr().out
        assert "byte-identical to the lock" in capsys.readouterr().out
        assert files(moved) == locked
    finally:
        shutil.move(str(mirror), str(tree / "data"))
        move(moved, tree / "out")


def test_an_input_root_above_the_manifests_folder_reads_as_the_readme_writes_it(tmp_path):
    demo = tmp_path / "clone" / "manifests" / "demo"
    move = parse_move(f"../../data={tmp_path / 'mnt' / 'mirror' / 'data'}")
    assert move == ("../../data", str(tmp_path / "mnt" / "mirror" / "data"))
    web = "../../data/demo/web/c4-sample.01.json.gz"
    assert current_location(web, str(demo), (move,)) == str(tmp_path / "mnt" / "mirror" / "data" / "demo" / "web" / "c4-sample.01.json.gz")
    assert current_location("../../tokenizers/allenai_dolma2.json", str(demo), (move,)) == str(
        tmp_path / "clone" / "tokenizers" / "allenai_dolma2.json"
    )


# Each stage's release is written under its own umask, so the two runs show the modes follow it.
UMASKS = {"stage1": 0o022, "stage2": 0o002}


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> tuple[Path, dict[str, list[str]]]:
    """Stage one then stage two of the small manifest, writing to one output path, each under its UMASKS
    entry: the output folder and each stage's log lines."""
    folder = tmp_path_factory.mktemp("stages")
    body = small_manifest(folder, output={"path": "../out", "tokenizer": str(TOKENIZER), "shard_tokens": 50_000})
    body["sources"] = [dict(s, paths=[f"../{p}" for p in s["paths"]]) for s in body["sources"]]
    logs: dict[str, list[str]] = {}
    for stage, umask in UMASKS.items():
        (folder / stage).mkdir()
        manifest = write_manifest(folder / stage, dict(body, name=stage))
        previous = os.umask(umask)
        try:
            run(load_manifest(manifest), ["--direct_num_workers=1"], log=logs.setdefault(stage, []).append)
        finally:
            os.umask(previous)
    return folder / "out", logs


def test_stage_two_reuses_the_pools_stage_one_scored(stages):
    out, logs = stages
    assert "[curate] 3 input files, 0 already pooled" in logs["stage1"]
    assert "[curate] 3 input files, 3 already pooled" in logs["stage2"]
    one, two = (files(out / stage / "1.0.0") for stage in ("stage1", "stage2"))
    assert one["shards/part-00000.index"] == two["shards/part-00000.index"]


@pytest.mark.parametrize("stage, mode", [("stage1", 0o644), ("stage2", 0o664)])
def test_outputs_respect_the_umask(stages, stage, mode):
    root = stages[0] / stage / "1.0.0"
    modes = {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}
    assert {"lock.json", "stats.json", "card.md", "ledger/quarantine.parquet", "shards/part-00000.npy"} <= set(modes)
    assert {name: m for name, m in modes.items() if m != mode} == {}
