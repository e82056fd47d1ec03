"""Every command that reads a finished release works on one stored on S3: a real small release (its folder and
`_cache/`) is uploaded to a moto server on loopback, and `curation stats`, `audit` (each query kind), `diff`,
`card` and `regenerate --verify` print through the command line what they print for the local copy."""

from __future__ import annotations

import hashlib

import boto3
import pytest
from helpers_io import s3_endpoint  # noqa: F401 - the fixture
from helpers_provenance import BROKEN_LINE, CONTAMINATED_ID, DUPLICATE_ID, build_release

from curation import storage
from curation.cli import main

BUCKET = "releases"
PREFIX = "team/out"


@pytest.fixture(scope="module")
def releases(tmp_path_factory, s3_endpoint):  # noqa: F811
    """(local release root, the same release's s3:// root), the whole output folder uploaded."""
    local = build_release(tmp_path_factory.getbasetemp() / "provenance-release")
    output = local.parents[1]
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(output.rglob("*")):
        if path.is_file() and path.name != "_cache.lock":
            client.upload_file(str(path), BUCKET, f"{PREFIX}/{path.relative_to(output).as_posix()}")
    return local, f"s3://{BUCKET}/{PREFIX}/{local.relative_to(output).as_posix()}"


def command(capsys, *argv: str) -> tuple[int, str, str]:
    """`curation ARGV` through the command line's entry point: exit code, stdout, stderr."""
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def error_line(err: str, name: str) -> str:
    (line,) = err.strip().splitlines()
    assert line.startswith(f"curation {name}: error: "), line
    return line


def objects(s3_root: str) -> dict[str, str]:
    """Every object under a release prefix with its ETag."""
    bucket, key = storage.split_s3(s3_root)
    client = storage._s3()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key + "/"):
        found.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return found


def input_uri(local_root) -> str:
    """The input as both copies of the release name it: relative to the manifest's folder."""
    return "data/web/extra.json.gz"


@pytest.mark.parametrize(
    "query",
    [
        ["stats"],
        ["stats", "--json"],
        ["audit", "--shard", "0", "--offset", "0", "--text"],
        ["audit", "--shard", "part-00001", "--offset", "5000", "--json"],
        ["audit", "--doc", DUPLICATE_ID, "--source", "web"],
        ["audit", "--doc", CONTAMINATED_ID, "--text"],
        ["audit", "--input", "INPUT", "--line", str(BROKEN_LINE), "--json"],
        ["audit", "--input", "INPUT", "--line", "1", "--text"],
    ],
    ids=lambda q: "-".join(w.lstrip("-") for w in q if w not in ("INPUT",))[:40],
)
def test_a_query_of_the_s3_release_prints_what_the_local_one_does(releases, capsys, query):
    local, s3_root = releases
    argv = [input_uri(local) if w == "INPUT" else w for w in query]
    expected = command(capsys, argv[0], str(local), *argv[1:])
    answer = command(capsys, argv[0], s3_root, *argv[1:])
    assert expected[0] == 0 and expected[1]
    assert answer == expected


def test_audit_lookup_on_s3_reads_a_few_small_ranges(releases, s3_endpoint):  # noqa: F811
    """A lookup binary searches the key arrays by ranged reads: a bounded number of requests, none of them a
    whole array or the records file."""
    from curation.audit import AuditIndex

    _, s3_root = releases
    requests = []
    events = storage._s3().meta.events
    count = lambda request, **_: requests.append(request.headers.get("Range"))  # noqa: E731
    events.register("before-send.s3", count)
    try:
        with AuditIndex(s3_root) as index:
            requests.clear()
            record = index.document(DUPLICATE_ID, "web")
    finally:
        events.unregister("before-send.s3", count)
    assert record["status"] == "dropped"
    # the keys' header and page, the rows' header and page, the offsets' header and page, one record
    assert len(requests) <= 7 and all(requests)


def test_diff_and_card_of_the_s3_release_match_the_local_one(releases, capsys):
    local, s3_root = releases
    code, out, _ = command(capsys, "diff", str(local), s3_root)
    assert code == 0 and "config: 0 field changes" in out
    web = next(line for line in out.splitlines() if line.startswith("web "))
    before, after, added, removed, changed = web.split()[1:6]
    assert before == after != "0" and (added, removed, changed) == ("0", "0", "0")
    card_etags = {k: v for k, v in objects(s3_root).items() if "/card." in k}
    code, out, _ = command(capsys, "card", s3_root)
    assert code == 0 and out.split() == [f"{s3_root}/card.md", f"{s3_root}/card.html"]
    for name in ("card.md", "card.html"):
        with storage.open_binary(f"{s3_root}/{name}") as f:
            assert f.read() == (local / name).read_bytes()
    assert {k: v for k, v in objects(s3_root).items() if "/card." in k} == card_etags


@pytest.mark.parametrize("name", ["stats", "audit", "card", "diff", "regenerate"])
def test_missing_s3_release_is_one_line_naming_it(releases, capsys, s3_endpoint, name):  # noqa: F811
    local, _ = releases
    missing = f"s3://{BUCKET}/nowhere/small/1.0.0"
    argv = {
        "stats": [missing],
        "audit": [missing, "--doc", DUPLICATE_ID],
        "card": [missing],
        "diff": [str(local), missing],
        "regenerate": [f"{missing}/lock.json", "--verify", f"--s3_endpoint_url={s3_endpoint}"],
    }[name]
    code, _, err = command(capsys, name, *argv)
    assert code == 2 and missing in error_line(err, name)


def test_regenerate_refuses_a_copied_lock_and_a_rebuild_inside_the_release(releases, capsys, s3_endpoint):  # noqa: F811
    _, s3_root = releases
    endpoint = f"--s3_endpoint_url={s3_endpoint}"
    copied = f"s3://{BUCKET}/elsewhere/lock.json"
    with storage.open_binary(f"{s3_root}/lock.json") as f, storage.atomic_write(copied) as out:
        out.write(f.read())
    code, _, err = command(capsys, "regenerate", copied, "--verify", endpoint)
    assert code == 2 and "not the release folder <output>/small/1.0.0/" in error_line(err, "regenerate")
    before = objects(s3_root)
    code, _, err = command(capsys, "regenerate", f"{s3_root}/lock.json", "--into", f"{s3_root}/rebuild", endpoint)
    assert code == 2 and "inside the release" in error_line(err, "regenerate")
    code, _, err = command(capsys, "regenerate", f"{s3_root}/lock.json", "--into", s3_root.rsplit("/", 2)[0], endpoint)
    assert code == 2 and "not empty" in error_line(err, "regenerate")
    assert objects(s3_root) == before


def test_regenerate_verifies_the_s3_release_and_names_an_altered_object(releases, capsys, tmp_path, s3_endpoint):  # noqa: F811
    """The rebuild goes to an empty output path of its own; the release on S3 is never moved or written."""
    local, s3_root = releases
    lock = f"{s3_root}/lock.json"
    # The lock names the local inputs relative to the manifest's folder, which the release on S3 cannot hold.
    beam = ["--quiet", "--direct_num_workers=1", f"--s3_endpoint_url={s3_endpoint}", "--input-root", f".={local.parents[2]}"]
    before = objects(s3_root)
    code, out, _ = command(capsys, "regenerate", lock, "--verify", "--into", str(tmp_path / "a"), *beam)
    assert code == 0 and f"every output of {s3_root} is byte-identical to the lock" in out, out
    assert objects(s3_root) == before and not list((tmp_path / "a").rglob("*.npy"))

    shard = f"{s3_root}/shards/part-00001.npy"
    original = (local / "shards" / "part-00001.npy").read_bytes()
    altered = bytearray(original)
    altered[1201] ^= 0x01
    with storage.atomic_write(shard) as f:
        f.write(bytes(altered))
    try:
        code, out, _ = command(capsys, "regenerate", lock, "--verify", "--into", str(tmp_path / "b"), *beam)
    finally:
        with storage.atomic_write(shard) as f:
            f.write(original)
    assert code == 1
    assert "1 output files differ; first: shards/part-00001.npy: rebuild matches the lock but the existing file" in out
    rebuilt = tmp_path / "b" / "small" / "1.0.0"
    assert f"rebuild kept at {rebuilt}; the release at {s3_root} is unchanged" in out
    assert hashlib.sha256((rebuilt / "shards" / "part-00001.npy").read_bytes()).digest() == hashlib.sha256(
        original
    ).digest()
