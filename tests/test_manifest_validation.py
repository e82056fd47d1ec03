"""A hostile or careless manifest is refused by `validate` (and by `run`, which loads the same way) in one
line naming the file or field: alias bombs, values a run would only trip over later, and files that are
not what the manifest says they are."""

from __future__ import annotations

import gzip
import math
import subprocess
import sys

import orjson
import pytest
from conftest import REPO, small_manifest, write_manifest

from curation.cli import main

# YAML's "billion laughs": under 500 bytes whose aliases expand to 10^9 list items.
ALIAS_BOMB = "\n".join(
    ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"a{i}: &a{i} [{','.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
)


def _refused(capsys, path, command: str = "validate", *extra: str) -> str:
    assert main([command, str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"curation {command}: error: "), err
    return err


def test_alias_bomb_is_refused_in_seconds_naming_the_file(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    # A subprocess with a timeout: without the bound this expansion runs for minutes and takes gigabytes.
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from curation.cli import main; sys.exit(main())", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert str(path) in done.stderr and "alias" in done.stderr


def test_self_referencing_alias_is_refused(tmp_path, capsys):
    path = tmp_path / "loop.yaml"
    path.write_text("name: &loop [*loop]\n")
    err = _refused(capsys, path)
    assert str(path) in err and "alias" in err


def test_the_demo_manifest_alias_expands_to_the_same_filters():
    from mixes.manifest import load_manifest

    m = load_manifest(REPO / "manifests" / "demo" / "demo.yaml").manifest
    assert m.source("web_warc").filters == m.source("web").filters and len(m.source("web").filters) == 6


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda b: b["output"].update(shard_tokens=0), "output: shard_tokens must be positive"),
        (lambda b: b["output"].update(shard_tokens=-5), "output: shard_tokens must be positive"),
        (lambda b: b["output"].update(documents_target_bytes=0), "output: documents_target_bytes must be positive"),
        (lambda b: b["sources"][0].update(max_document_bytes=0), "sources[0]: max_document_bytes must be positive"),
        (lambda b: b["sources"][0].update(max_document_bytes=-1), "sources[0]: max_document_bytes must be positive"),
        (lambda b: b.update(mix={"target_tokens": 0, "sources": {"web": {"ratio": 1.0}}}), "mix: target_tokens must be positive"),
        (lambda b: b.update(mix={"target_tokens": -10, "sources": {"web": {"ratio": 1.0}}}), "mix: target_tokens must be positive"),
        (lambda b: b.update(mix={"target_tokens": 10, "sources": {"web": {"ratio": 1.0, "max_repetition": math.nan}}}), "mix.sources.web.max_repetition: expected a finite number"),
        (lambda b: b.update(mix={"target_tokens": 10, "sources": {"web": {"ratio": 1.0, "max_repetition": math.inf}}}), "mix.sources.web.max_repetition: expected a finite number"),
        (lambda b: b["sources"][0].update(filters=[{"use": "gopher_quality_v1", "max_hash_to_word_ratio": math.nan}]), "sources[0].filters[0].max_hash_to_word_ratio: expected a finite number"),
        (lambda b: b.update(seed=2**70), "seed: 1180591620717411303424 does not fit in 64 bits"),
        (lambda b: b["sources"][0].update(filters=[{"use": "gopher_quality_v1", "min_words": -(2**64)}]), "sources[0].filters[0].min_words: -18446744073709551616 does not fit in 64 bits"),
        (lambda b: b.update(name="small\n"), "name 'small\\n' must be letters"),
        (lambda b: b.update(version="1.0.0\n"), "version '1.0.0\\n' must be semantic"),
        (lambda b: b["sources"][0].update(name="web\n"), "sources[0]: source name 'web\\n' must be letters"),
    ],
)
def test_validate_refuses_values_a_run_would_only_trip_over_later(tmp_path, capsys, change, field):
    body = small_manifest(tmp_path)
    change(body)
    path = write_manifest(tmp_path, body)
    err = _refused(capsys, path)
    assert f"{path}: {field}" in err, err
