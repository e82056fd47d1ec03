"""`curation export OUTPUT --format hf DEST` on a real small release: Hugging Face `datasets` loads every source
together in one schema and each source alone, and gives back every published document as it is in the
release's documents/, with the text `curation audit` reports for its id; the card is README.md with its header; a release on S3 exports to S3 the same bytes;
a destination in use is refused in one line."""

from __future__ import annotations

import hashlib
from pathlib import Path

import boto3
import orjson
import pytest
import yaml
from helpers_io import s3_endpoint  # noqa: F401 - the fixture
from helpers_provenance import build_release

from curation.audit import AuditIndex
from curation.cli import main
from curation.writers import DOCUMENT_SCHEMA, JSON_STRING_FIELDS, read_documents

datasets = pytest.importorskip("datasets", reason="pip install datasets (in the test extra)")

BUCKET = "exports"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    return build_release(tmp_path_factory.getbasetemp() / "provenance-release")


@pytest.fixture(scope="module")
def exported(release, tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("export") / "small-hf"
    assert main(["export", str(release), "--format", "hf", str(dest), "--quiet"]) == 0
    return dest


def published(folder: Path, pattern: str = "documents/*/part-*") -> dict[tuple[str, str], dict]:
    """Every document of the files under `folder` matching `pattern`, by (source, id)."""
    docs = {}
    for part in sorted(folder.glob(pattern)):
        for doc in read_documents(str(part)):
            docs[(doc["source"], doc["id"])] = doc
    return docs


def as_published(row: dict) -> dict:
    return row | {name: orjson.loads(row[name]) for name in JSON_STRING_FIELDS}


def load(dest: Path, tmp_path: Path, config: str | None = None):
    return datasets.load_dataset(str(dest), config, split="train", cache_dir=str(tmp_path / "hf-cache"))


@pytest.fixture(scope="module")
def loaded(exported, tmp_path_factory):
    """Every source together, as `datasets.load_dataset` gives the exported folder."""
    return load(exported, tmp_path_factory.mktemp("load"))


def test_every_document_comes_back_from_load_dataset_as_published(release, exported, loaded):
    assert loaded.column_names == DOCUMENT_SCHEMA.names
    expected = published(release)
    rows = {(row["source"], row["id"]): as_published(row) for row in loaded}
    assert len(rows) == len(loaded) == len(expected) > 1000 and set(rows) == set(expected)
    for key, doc in expected.items():
        assert rows[key] == {name: doc.get(name) for name in DOCUMENT_SCHEMA.names}, key
    # The exported Parquet reads back through the reader of published documents too.
    assert published(exported, "data/*/*.parquet") == {k: rows[k] for k in expected}


def test_every_loaded_document_has_the_text_curation_audit_reports(release, loaded):
    with AuditIndex(str(release)) as audit:
        for row in loaded:
            record = audit.document(row["id"], row["source"])
            assert audit.text(record, row["id"]) == row["text"], (row["source"], row["id"])
    assert len(loaded) > 1000


def test_each_source_loads_alone_as_its_config(release, exported, tmp_path):
    expected = published(release)
    papers = load(exported, tmp_path, "papers")
    assert sorted(papers["id"]) == sorted(i for s, i in expected if s == "papers")
    assert set(papers["source"]) == {"papers"}


def test_readme_is_the_card_with_configs_and_the_lock_sha256(release, exported):
    readme = (exported / "README.md").read_text()
    header = yaml.safe_load(readme.split("---\n", 2)[1])
    stats = orjson.loads((release / "stats.json").read_bytes())
    assert [c["config_name"] for c in header["configs"]] == ["all", *stats["sources"]]
    assert header["configs"][0]["default"] is True and header["license"] == ["cc0-1.0", "odc-by"]
    lock_sha256 = hashlib.sha256((release / "lock.json").read_bytes()).hexdigest()
    assert f"| lock.json sha256 | {lock_sha256} |" in readme
    assert "## Decontamination" in readme and "| humaneval | 0 | 0 | 0 |" in readme
    assert sorted(p.relative_to(exported).parts[:2] for p in exported.glob("data/*/*.parquet")) == sorted(
        ("data", s) for s in stats["sources"] if stats["sources"][s]["kept_documents"]
    )


def test_documents_folder_holds_documents_only(release):
    """Completion markers sit beside documents/, so datatrove and `datasets` reading it meet only documents."""
    assert all(p.name.startswith("part-") for p in release.glob("documents/*/*"))
    assert sorted(p.name for p in (release / "documents_complete").iterdir()) == sorted(
        f"{source.name}.json" for source in (release / "documents").iterdir()
    )


def test_destination_in_use_is_refused_in_one_line(release, tmp_path, capsys):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "notes.txt").write_text("someone's files\n")
    assert main(["export", str(release), "--format", "hf", str(taken)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"curation export: error: {taken}: already exists and is not empty; export into a new or empty folder"
    assert sorted(p.name for p in taken.iterdir()) == ["notes.txt"]


def test_release_on_s3_exports_to_s3_the_same_bytes(release, exported, s3_endpoint):  # noqa: F811
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    client.create_bucket(Bucket=BUCKET)
    for path in sorted(release.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), BUCKET, f"out/small/1.0.0/{path.relative_to(release).as_posix()}")
    assert main(["export", f"s3://{BUCKET}/out/small/1.0.0", "--format", "hf", f"s3://{BUCKET}/hf", "--quiet"]) == 0
    listed = client.list_objects_v2(Bucket=BUCKET, Prefix="hf/")["Contents"]
    on_s3 = {o["Key"].removeprefix("hf/"): client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}
    local = {p.relative_to(exported).as_posix(): p.read_bytes() for p in exported.rglob("*") if p.is_file()}
    assert on_s3 == local
    assert main(["export", f"s3://{BUCKET}/out/small/1.0.0", "--format", "hf", f"s3://{BUCKET}/hf"]) == 2
