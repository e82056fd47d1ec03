"""A finished release's curated documents as a Hugging Face dataset folder, which `datasets.load_dataset`
reads whole or one source at a time: `data/<source>/part-NNNNN.parquet` in one schema for every source
(metadata, attributes and provenance as JSON strings, as `output.documents_format: parquet` writes them),
and the dataset card as README.md, whose YAML header declares the configs. README.md is written last, so a
folder without it is an export that did not finish."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from typing import Any

from curation import storage
from curation.card import card_markdown, read_stats
from curation.errors import InputError
from curation.lock import read_lock
from curation.release_state import check_complete
from curation.writers import DocumentWriter, read_documents

ALL_SOURCES = "all"
PARQUET_TARGET_BYTES = 256 * 1024 * 1024


def hf_configs(sources: list[str]) -> list[dict[str, Any]]:
    """Every source together (the default), then one config per source."""
    every = {"config_name": ALL_SOURCES, "data_files": [{"split": "train", "path": "data/*/*.parquet"}], "default": True}
    return [every] + [
        {"config_name": name, "data_files": [{"split": "train", "path": f"data/{name}/*.parquet"}]} for name in sources
    ]


def _check_destination(dest: str) -> None:
    if storage.is_s3(dest):
        try:
            taken = bool(storage.list_files(storage.join(dest, "**")))
        except InputError:
            taken = False
    else:
        taken = os.path.exists(dest) and (not os.path.isdir(dest) or bool(os.listdir(dest)))
    if taken:
        raise InputError(f"{dest}: already exists and is not empty; export into a new or empty folder")


def export_hf(output: str, dest: str, log: Callable[[str], None] = lambda _: None) -> str:
    """Write the Hugging Face folder of release `output` to `dest`; returns the README's path."""
    check_complete(output)
    lock_path = storage.join(output, "lock.json")
    lock = read_lock(lock_path)
    stats = read_stats(output)
    _check_destination(dest)
    for source in stats["sources"]:
        try:
            published = storage.list_files(storage.join(output, "documents", source, "part-*"))
        except InputError:
            published = []
        if stats["sources"][source]["kept_documents"] and not published:
            raise InputError(
                f"{output}: no documents/{source}/ although the source kept documents; the release was run "
                "with output.write_documents false, so run it again with documents written"
            )
        documents = 0
        with DocumentWriter(storage.join(dest, "data", source, "part"), "parquet", PARQUET_TARGET_BYTES) as writer:
            for uri in published:
                for doc in read_documents(uri):
                    writer.write(doc)
                    documents += 1
        log(f"[export] {source}: {documents:,} documents from {len(published)} files")
    with storage.open_binary(lock_path) as f:
        lock_sha256 = hashlib.sha256(f.read()).hexdigest()
    readme = storage.join(dest, "README.md")
    with storage.atomic_write(readme) as f:
        f.write(card_markdown(stats, lock, hf_configs(list(stats["sources"])), lock_sha256).encode())
    return readme
