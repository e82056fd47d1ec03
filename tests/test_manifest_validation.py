"""A hostile or careless manifest is refused by `validate` (and by `run`, which loads the same way) in one
line naming the file or field: alias bombs, values a run would only trip over later, and files that are
not what the manifest says they are."""

from __future__ import annotations

import gzip
import math
import os
import subprocess
import sys

import orjson
import pytest
from conftest import REPO, small_manifest, write_manifest

from curation.cli import main
from curation.errors import ManifestError
from filters.decontaminate.index import build_index, index_cached
from mixes.manifest import load_manifest

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
        [
            sys.executable,
            "-c",
            "import sys; from curation.cli import main; sys.exit(main())",
            "validate",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1
    assert str(path) in done.stderr and "alias" in done.stderr


def test_self_referencing_alias_is_refused(tmp_path, capsys):
    path = tmp_path / "loop.yaml"
    path.write_text("name: &loop [*loop]\n")
    err = _refused(capsys, path)
    assert str(path) in err and "alias" in err


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"name: [demo,\n  version: 1.0.0\n", "not valid YAML: while parsing a flow sequence"),
        (b"[" * 5000 + b"]" * 5000, "nested too deeply to be a manifest"),
        (b"name: \xff\xfe demo\n", "cannot read this manifest file ('utf-8' codec can't decode"),
    ],
    ids=["malformed", "deeply_nested", "not_utf8"],
)
def test_a_manifest_that_is_not_yaml_text_is_one_line_naming_the_file(tmp_path, capsys, content, problem):
    path = tmp_path / "manifest.yaml"
    path.write_bytes(content)
    err = _refused(capsys, path)
    assert f"{path}: {problem}" in err, err


def test_aliases_may_add_up_to_the_budget_and_no_more(tmp_path):
    from curation.config import MAX_ALIAS_NODES, read_yaml

    path = tmp_path / "aliases.yaml"
    for items, allowed in [(MAX_ALIAS_NODES - 1, True), (MAX_ALIAS_NODES, False)]:
        # `*a` adds the list node and its items again: the budget exactly, then one node more.
        path.write_text(f"a: &a [{', '.join(['x'] * items)}]\nb: *a\n")
        if allowed:
            assert read_yaml(path, "manifest")["b"] == ["x"] * items
        else:
            with pytest.raises(ManifestError, match=f"{path}: YAML aliases expand this file by 10,001 nodes"):
                read_yaml(path, "manifest")


def _top(**values):
    return lambda body: body.update(values)


def _output(**values):
    return lambda body: body["output"].update(values)


def _source(**values):
    return lambda body: body["sources"][0].update(values)


def _mix(target_tokens: int = 10, **web):
    return lambda body: body.update(
        mix={"target_tokens": target_tokens, "sources": {"web": {"ratio": 1.0, **web}}}
    )


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_output(shard_tokens=0), "output: shard_tokens must be positive"),
        (_output(shard_tokens=-5), "output: shard_tokens must be positive"),
        (_output(documents_target_bytes=0), "output: documents_target_bytes must be positive"),
        (_source(max_document_bytes=0), "sources[0]: max_document_bytes must be positive"),
        (_source(max_document_bytes=-1), "sources[0]: max_document_bytes must be positive"),
        (_mix(target_tokens=0), "mix: target_tokens must be positive"),
        (_mix(target_tokens=-10), "mix: target_tokens must be positive"),
        (_mix(max_repetition=math.nan), "mix.sources.web.max_repetition: expected a finite number, got nan"),
        (_mix(max_repetition=math.inf), "mix.sources.web.max_repetition: expected a finite number, got inf"),
        (
            lambda body: body.update(mix={"sources": {"web": {"tokens": 1000}}}),
            "mix.sources: source 'papers' is not listed; give every source a ratio or tokens, or drop the source",
        ),
        (
            _source(filters=[{"use": "gopher_quality_v1", "max_hash_to_word_ratio": math.nan}]),
            "sources[0].filters[0].max_hash_to_word_ratio: expected a finite number",
        ),
        (_top(seed=2**70), "seed: 1180591620717411303424 does not fit in 64 bits"),
        (
            _source(filters=[{"use": "gopher_quality_v1", "min_words": -(2**64)}]),
            "sources[0].filters[0].min_words: -18446744073709551616 does not fit in 64 bits",
        ),
        (_top(name="small\n"), "name 'small\\n' must be letters"),
        (_top(version="1.0.0\n"), "version '1.0.0\\n' must be semantic"),
        (_source(name="web\n"), "sources[0]: source name 'web\\n' must be letters"),
    ],
)
def test_validate_refuses_values_a_run_would_only_trip_over_later(tmp_path, capsys, change, field):
    body = small_manifest(tmp_path)
    change(body)
    path = write_manifest(tmp_path, body)
    err = _refused(capsys, path)
    assert f"{path}: {field}" in err, err


def _tokenizer_not_json(tmp_path):
    (tmp_path / "tok.json").write_text("<html>not found</html>")
    return "tok.json", "is not JSON"


def _tokenizer_without_model(tmp_path):
    (tmp_path / "tok.json").write_bytes(orjson.dumps({"version": "1.0", "vocab": {"a": 0}}))
    return "tok.json", "has no 'model' object"


def _tokenizer_missing(tmp_path):
    return "absent.json", "not found"


@pytest.mark.parametrize("make", [_tokenizer_not_json, _tokenizer_without_model, _tokenizer_missing])
def test_validate_refuses_a_tokenizer_that_is_not_a_tokenizer_json(tmp_path, capsys, make):
    name, problem = make(tmp_path)
    body = small_manifest(tmp_path)
    body["output"]["tokenizer"] = name
    path = write_manifest(tmp_path, body)
    err = _refused(capsys, path)
    assert f"{path}: output.tokenizer: {tmp_path / name}" in err and problem in err, err


@pytest.mark.parametrize(
    ("spec", "key", "real_model"),
    [
        (
            {"use": "quality_classifier_v1", "min_score": 0.5},
            "model",
            REPO / "models" / "quality-dclm-labels.ftz",
        ),
        ({"use": "language_v1"}, "model_path", REPO / "filters" / "resources" / "lid.176.ftz"),
    ],
)
def test_validate_refuses_a_filter_model_that_is_not_a_fasttext_model(
    tmp_path, capsys, spec, key, real_model
):
    body = small_manifest(tmp_path)
    body["sources"][0]["filters"] = [{**spec, key: str(real_model)}]
    assert main(["validate", str(write_manifest(tmp_path, body))]) == 0
    capsys.readouterr()
    (tmp_path / "notes.bin").write_bytes(b"__label__hq a well written page\n")
    for name, problem in [("notes.bin", "is not a fastText model"), ("absent.bin", "not found")]:
        body["sources"][0]["filters"][0][key] = name
        path = write_manifest(tmp_path, body)
        err = _refused(capsys, path)
        assert f"{path}: sources[0].filters[0].{key}: {tmp_path / name}" in err and problem in err, err


def _eval_bad_json_line(tmp_path):
    (tmp_path / "ev.jsonl").write_bytes(b'{"question": "What is two plus two?"}\n{"question": oops\n')
    return "ev.jsonl", "ev.jsonl:2: not valid JSON"


def _eval_corrupt_gzip(tmp_path):
    (tmp_path / "ev.jsonl.gz").write_bytes(gzip.compress(b'{"question": "q"}\n' * 50)[:40])
    return "ev.jsonl.gz", "ev.jsonl.gz: cannot read"


def _eval_without_the_text_field(tmp_path):
    (tmp_path / "ev.jsonl").write_bytes(b'{"query": "What is two plus two?"}\n')
    return "ev.jsonl", "text field 'question' has text in no record"


def _eval_missing(tmp_path):
    return "absent.jsonl", "eval file not found"


@pytest.mark.parametrize(
    "make", [_eval_bad_json_line, _eval_corrupt_gzip, _eval_without_the_text_field, _eval_missing]
)
def test_validate_refuses_an_eval_file_that_does_not_parse(tmp_path, capsys, make):
    name, problem = make(tmp_path)
    body = small_manifest(tmp_path)
    body["decontaminate"] = {"evals": [{"name": "quiz", "paths": [name], "text_fields": ["question"]}]}
    path = write_manifest(tmp_path, body)
    err = _refused(capsys, path)
    assert f"{path}: decontaminate: benchmark 'quiz'" in err and problem in err, err


def test_an_eval_file_changed_since_its_index_was_cached_is_parsed_again(tmp_path, capsys):
    # An index cached from the file's earlier bytes spares validate the parse of those bytes only.
    eval_file = tmp_path / "ev.jsonl"
    eval_file.write_bytes(b'{"question": "What is two plus two, asked of a pupil in the first year?"}\n')
    body = small_manifest(tmp_path)
    body["decontaminate"] = {"evals": [{"name": "quiz", "paths": [eval_file.name], "text_fields": ["question"]}]}
    path = write_manifest(tmp_path, body)
    config = load_manifest(str(path)).manifest.decontaminate
    build_index(config, tmp_path)
    assert index_cached(config, tmp_path) and main(["validate", str(path)]) == 0
    eval_file.write_bytes(eval_file.read_bytes() + b'{"question": oops\n')
    assert not index_cached(config, tmp_path)
    assert "ev.jsonl:2: not valid JSON" in _refused(capsys, path)


def test_run_refuses_a_bad_file_before_doing_any_work(tmp_path, capsys):
    (tmp_path / "tok.json").write_text("not json")
    body = small_manifest(tmp_path)
    body["output"]["tokenizer"] = "tok.json"
    err = _refused(capsys, write_manifest(tmp_path, body), "run", "--direct_num_workers=1", "--quiet")
    assert "output.tokenizer" in err
    assert not (tmp_path / "out").exists()
