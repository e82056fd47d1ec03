"""The `curation` command as a user meets it: help, validation errors, inspect, stats, audit, JSON output,
and which commands import Beam."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys

import orjson
import pytest
from conftest import DEMO_DATA, REPO, small_manifest, write_manifest
from helpers_provenance import BROKEN_LINE, CONTAMINATED_ID, build_release

from curation.cli import main


def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "curation.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("run", "validate", "inspect", "stats", "train-quality"):
        assert command in out


def test_validate_accepts_the_demo_manifest(capsys):
    assert main(["validate", str(REPO / "manifests" / "demo" / "demo.yaml")]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda b: b["sources"][0].update(text_feld="body"), r"sources\[0\]\.text_feld: unknown field \(did you mean 'text_field'\?\)"),
        (lambda b: b["sources"][0].update(on_error="ignore"), r"sources\[0\]\.on_error: 'ignore' is not one of \['fail', 'quarantine'\]"),
        (lambda b: b.update(version="1.0"), r"version '1\.0' must be semantic"),
        (lambda b: b.update(mix={"target_tokens": 100, "sources": {"wbe": {"ratio": 1.0}}}), r"mix\.sources\.wbe: unknown source 'wbe' \(did you mean 'web'\?\)"),
        (lambda b: b["sources"][0].update(filters=[{"use": "gopher_qualty"}]), r"sources\[0\]\.filters\[0\]\.use: unknown filter 'gopher_qualty'"),
        (lambda b: b.pop("output"), r"output: required field is missing"),
    ],
)
def test_validate_names_the_file_the_field_and_close_matches(tmp_path, capsys, change, expected):
    body = small_manifest(tmp_path)
    change(body)
    path = write_manifest(tmp_path, body)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err
    assert __import__("re").search(expected, err), err


def test_inspect_prints_documents_and_counts_quarantine(tmp_path, capsys):
    good = gzip.decompress((DEMO_DATA / "web" / "c4-sample.01.json.gz").read_bytes()).splitlines()
    (tmp_path / "mixed.jsonl.gz").write_bytes(gzip.compress(b"\n".join(good[:3] + [b"{oops"]) + b"\n"))
    assert main(["inspect", str(tmp_path / "mixed.jsonl.gz"), "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "documents: 3" in out and "invalid_json 1" in out and out.count("--- ") == 1


def test_inspect_reads_warc(capsys):
    assert main(["inspect", str(DEMO_DATA / "warc" / "sample-0000.warc.gz"), "-n", "1", "--chars", "80"]) == 0
    out = capsys.readouterr().out
    assert "documents: 22" in out and "url: http" in out


def test_stats_of_a_missing_output_is_a_clear_error(tmp_path, capsys):
    assert main(["stats", str(tmp_path)]) == 2
    assert "no stats.json" in capsys.readouterr().err


def test_run_then_stats_reports_ratios(tmp_path, capsys):
    body = small_manifest(tmp_path, mix={"target_tokens": 60_000, "sources": {"web": {"ratio": 0.1, "max_repetition": 2}, "papers": {"ratio": 0.9}}})
    assert main(["run", str(write_manifest(tmp_path, body)), "--direct_num_workers=1", "--quiet"]) == 0
    capsys.readouterr()
    release = tmp_path / "out" / "small" / "1.0.0"
    assert main(["stats", str(release)]) == 0
    out = capsys.readouterr().out
    web = next(line for line in out.splitlines() if line.startswith("web"))
    assert "0.1000" in web
    # The kept column holds kept documents down to its total; the mix's own count (repeats and all) is apart.
    stats = orjson.loads((release / "stats.json").read_bytes())
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    kept = {name: int(rows[name][0].replace(",", "")) for name in stats["sources"]}
    assert kept == {name: s["kept_documents"] for name, s in stats["sources"].items()}
    assert int(rows["total"][0].replace(",", "")) == sum(kept.values()) == stats["totals"]["kept_documents"]
    assert stats["totals"]["mixed_documents"] != stats["totals"]["kept_documents"]
    assert out.splitlines()[-1].endswith(f"mixed as {stats['totals']['mixed_documents']:,} documents in {len(stats['shards'])} shards")


def test_infeasible_mix_fails_naming_the_source_and_shortfall(tmp_path, capsys):
    body = small_manifest(tmp_path, mix={"target_tokens": 10_000_000, "sources": {"web": {"ratio": 0.5}, "papers": {"ratio": 0.5}}})
    assert main(["run", str(write_manifest(tmp_path, body)), "--direct_num_workers=1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "source 'web' is short by" in err and "source 'papers' is short by" in err
    # Refused before tokenizing, from a bound: the message must not pass the bound off as the tokens kept.
    assert "at most (its pooled text's bytes as tokens, before any filter)" in err
    assert not list((tmp_path / "out" / "small" / "1.0.0").glob("shards/*.npy"))


def test_inspect_reads_an_s3_glob(s3_bucket, capsys):
    from curation import storage

    for name in ("c4-sample.01.json.gz", "c4-sample.02.json.gz"):
        bucket, key = storage.split_s3(f"{s3_bucket}/c4/{name}")
        storage._s3().put_object(Bucket=bucket, Key=key, Body=(DEMO_DATA / "web" / name).read_bytes())
    assert main(["inspect", f"{s3_bucket}/c4/*.json.gz", "-n", "1"]) == 0
    out = capsys.readouterr().out
    assert "files: 2  documents: 20" in out and f"{s3_bucket}/c4/c4-sample.01.json.gz" in out


def _manifest_refused_after_parsing(tmp_path):
    """A manifest the run refuses at once (its input is missing): reaching that refusal proves the arguments
    parsed."""
    body = small_manifest(tmp_path)
    body["sources"] = [{"name": "web", "paths": ["missing/*.json.gz"]}]
    return str(write_manifest(tmp_path, body))


@pytest.mark.parametrize(
    "words", [["--direct_num_workers", "1", "MANIFEST"], ["--runner", "DirectRunner", "MANIFEST", "--quiet"]]
)
def test_beam_options_given_as_separate_words_before_the_manifest(tmp_path, capsys, words):
    manifest = _manifest_refused_after_parsing(tmp_path)
    assert main(["run", *[manifest if w == "MANIFEST" else w for w in words]]) == 2
    assert "missing/*.json.gz: no input file matches this path" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["--runner", "DaskRunner"], "--runner=DaskRunner is not supported: "),
        (["--direct_num_worker=2"], "--direct_num_worker: no such option (did you mean '--direct_num_workers'?"),
        (["--quite"], "--quite: no such option (did you mean '--quiet'?)"),
    ],
)
def test_a_bad_beam_option_is_one_line_naming_it(tmp_path, capsys, words, expected):
    assert main(["run", *words, _manifest_refused_after_parsing(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"curation run: error: {expected}") and err.count("\n") == 1, err


def test_s3_options_on_the_command_line_configure_its_s3_client(
    tmp_path, capsys, s3_bucket, s3_endpoint, monkeypatch
):
    from curation import storage

    body = small_manifest(tmp_path)
    body["sources"] = [{"name": "web", "paths": [f"{s3_bucket}/none/*.json.gz"]}]
    manifest = str(write_manifest(tmp_path, body))
    monkeypatch.delenv("CURATION_S3_ENDPOINT_URL", raising=False)
    storage.configure_s3()  # forget the fixture's endpoint: only the command line gives it
    try:
        assert main(["run", manifest, "--s3_endpoint_url", s3_endpoint, "--s3_region_name=us-east-1"]) == 2
    finally:
        storage.configure_s3(endpoint_url=s3_endpoint)
    # Listing the bucket worked, so the command reached the loopback server; it merely found nothing there.
    assert f"{s3_bucket}/none/*.json.gz: no input file matches this path" in capsys.readouterr().err


def test_version_names_the_package_version(capsys):
    import curation

    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0 and capsys.readouterr().out == f"curation {curation.__version__}\n"


def test_an_s3_file_validate_cannot_ask_about_is_not_called_missing(tmp_path, capsys, monkeypatch):
    """When the store cannot be asked (here nothing listens at the endpoint), the one line says so, rather
    than calling the file missing."""
    from curation import storage

    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    storage.configure_s3(endpoint_url="http://127.0.0.1:9")
    try:
        body = small_manifest(tmp_path)
        body["output"]["tokenizer"] = "s3://models/allenai_dolma2.json"
        assert main(["validate", str(write_manifest(tmp_path, body))]) == 2
    finally:
        storage.configure_s3()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "output.tokenizer: s3://models/allenai_dolma2.json: cannot read S3 object (EndpointConnectionError)" in err, err


@pytest.fixture(scope="session")
def release(tmp_path_factory):
    return build_release(tmp_path_factory.getbasetemp() / "provenance-release")


# Runs each command in one fresh interpreter and reports, after each, its exit code and whether Beam was
# imported by then: once one command imports it, every later one would be blamed, so the first is the culprit.
_IMPORTS_AFTER_EACH_COMMAND = """
import json, sys
from curation.cli import main
seen = []
for argv in json.loads(sys.argv[1]):
    try:
        code = main(argv)
    except SystemExit as exit:
        code = exit.code
    seen.append([argv[0], code, "apache_beam" in sys.modules])
print(json.dumps(seen), file=sys.stderr)
"""


def test_read_only_commands_do_not_import_beam(release, tmp_path):
    card_copy = tmp_path / "card-copy"
    shutil.copytree(release, card_copy)  # `card` rewrites the card: not in the release other tests read
    extra = str(release.parents[2] / "data" / "web" / "extra.json.gz")
    commands = [
        ["--help"],
        ["--version"],
        ["validate", str(REPO / "manifests" / "demo" / "demo.yaml")],
        ["inspect", str(DEMO_DATA / "web" / "c4-sample.01.json.gz"), "-n", "1"],
        ["stats", str(release)],
        ["stats", str(release), "--json"],
        ["audit", str(release), "--shard", "0", "--offset", "0", "--text"],
        ["audit", str(release), "--doc", CONTAMINATED_ID, "--json"],
        ["audit", str(release), "--input", extra, "--line", str(BROKEN_LINE)],
        ["diff", str(release), str(release)],
        ["card", str(card_copy)],
        ["export", str(release), "--format", "hf", str(tmp_path / "hf"), "--quiet"],
    ]
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AFTER_EACH_COMMAND, json.dumps(commands)], capture_output=True, text=True
    )
    seen = json.loads(proc.stderr.splitlines()[-1])
    assert [(name, code) for name, code, _ in seen] == [(c[0], 0) for c in commands], proc.stderr
    assert [name for name, _, beam in seen if beam] == [], "these imported apache_beam"


def test_a_command_that_runs_pipelines_still_imports_beam():
    """The check above can fail: `run` parses Beam's options, so Beam is there once it has started."""
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORTS_AFTER_EACH_COMMAND, json.dumps([["run", "missing.yaml"]])],
        capture_output=True,
        text=True,
    )
    assert json.loads(proc.stderr.splitlines()[-1]) == [["run", 2, True]]


@pytest.mark.parametrize(
    ("words", "shape"),
    [
        (["stats", "{release}", "--json"], dict),
        (["audit", "{release}", "--shard", "0", "--offset", "0", "--json"], dict),
        (["audit", "{release}", "--shard", "0", "--offset", "0", "--json", "--text"], dict),
        (["audit", "{release}", "--doc", CONTAMINATED_ID, "--json", "--text"], dict),
        (["audit", "{release}", "--input", "{extra}", "--line", str(BROKEN_LINE), "--json", "--text"], list),
    ],
)
def test_json_output_is_one_json_document(release, capsys, words, shape):
    extra = str(release.parents[2] / "data" / "web" / "extra.json.gz")
    assert main([w.format(release=release, extra=extra) for w in words]) == 0
    parsed = json.loads(capsys.readouterr().out)
    assert isinstance(parsed, shape)
    records = parsed if shape is list else [parsed]
    if "--text" in words:
        # The curated text of a kept document; null for one that never reached the output.
        assert all("text" in r for r in records)
        assert [r["text"] is None for r in records] == [r.get("status") != "kept" for r in records]


def test_audit_json_text_of_a_token_is_the_printed_text(release, capsys):
    assert main(["audit", str(release), "--shard", "0", "--offset", "0", "--text"]) == 0
    printed = capsys.readouterr().out.split("--- text\n", 1)[1]
    assert main(["audit", str(release), "--shard", "0", "--offset", "0", "--json", "--text"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] + "\n" == printed


def test_audit_json_of_an_unrecorded_place_is_an_empty_list(release, capsys):
    extra = str(release.parents[2] / "data" / "web" / "extra.json.gz")
    assert main(["audit", str(release), "--input", extra, "--line", "99", "--json"]) == 1
    assert json.loads(capsys.readouterr().out) == []


@pytest.mark.parametrize(
    ("cwd", "given"),
    [
        ("{folder}/data", "web/extra.json.gz"),  # relative to where the user stands
        ("{folder}", "./data/web/../web/extra.json.gz"),
        ("{elsewhere}", "data/web/extra.json.gz"),  # as the lock names it, from the manifest's folder
    ],
)
def test_audit_input_accepts_relative_paths(release, capsys, monkeypatch, tmp_path, cwd, given):
    monkeypatch.chdir(cwd.format(folder=release.parents[2], elsewhere=tmp_path))
    assert main(["audit", str(release), "--input", given, "--line", str(BROKEN_LINE)]) == 0
    assert "quarantined record of source web: invalid_json" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        (["--direct_num_worker=2"], "--direct_num_worker: no such option (did you mean '--direct_num_workers'?"),
        (["--runner", "FlinkRuner"], "--runner=FlinkRuner: unknown runner (did you mean 'FlinkRunner'?)"),
    ],
)
def test_regenerate_names_a_mistyped_beam_option_before_touching_the_release(release, capsys, words, expected):
    before = (release / "lock.json").stat().st_mtime_ns
    assert main(["regenerate", str(release / "lock.json"), "--verify", *words]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"curation regenerate: error: {expected}") and err.count("\n") == 1, err
    assert (release / "lock.json").stat().st_mtime_ns == before and not (release.parent / "1.0.0.previous").exists()


_COMMAND_WITH_AN_EXIT_HANDLER = """
import atexit, sys
atexit.register(lambda: print("exit handler ran", flush=True))
from curation.cli import entry
sys.argv = ["curation", *sys.argv[1:]]
entry()
"""


@pytest.mark.parametrize(
    ("args", "code", "expected"),
    [
        (["inspect", str(DEMO_DATA / "web" / "c4-sample.01.json.gz"), "-n", "1"], 0, "files: 1  documents: 10"),
        (["inspect", "absent.jsonl.gz"], 2, "curation inspect: error: absent.jsonl.gz: no input file matches"),
    ],
)
def test_the_command_exits_with_mains_code_its_output_flushed_and_exit_handlers_run(tmp_path, args, code, expected):
    done = subprocess.run(
        [sys.executable, "-c", _COMMAND_WITH_AN_EXIT_HANDLER, *args], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == code
    assert expected in done.stdout + done.stderr
    assert done.stdout.endswith("exit handler ran\n")
