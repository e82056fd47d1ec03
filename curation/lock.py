"""lock.json beside every output: everything needed to rebuild it byte for byte and to prove it did —
the manifest hash, code and library versions, every input with its size and sha256 (S3: ETag too),
the models, tokenizer and eval sets by sha256, the seed, and the sha256 of every output file."""

from __future__ import annotations

import importlib.metadata
import os
from typing import Any

import orjson

import curation
from curation import storage
from curation.errors import InputError
from curation.pipeline import MODEL_KEYS

LIBRARIES = ("apache-beam", "tokenizers", "tiktoken", "fasttext-numpy2-wheel", "datatrove", "pyarrow", "numpy", "zstandard")
LOCK_VERSION = 1


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def file_entry(uri: str) -> dict[str, Any]:
    st = storage.stat(uri)
    entry = {"uri": uri, "size": st.size, "sha256": storage.sha256(uri)}
    if st.etag:
        entry["etag"] = st.etag
    return entry


def output_files(root: str) -> list[str]:
    """The products of a run (everything but the work/ cache and the lock itself), relative, sorted."""
    found = []
    for pattern in ("shards/*", "documents/*/*", "ledger/*", "decontamination/*", "stats.json", "manifest.yaml", "card.*"):
        try:
            matches = storage.list_files(storage.join(root, pattern))
        except InputError:
            continue
        for uri in matches:
            found.append(os.path.relpath(uri, root) if not storage.is_s3(uri) else uri[len(root) + 1 :])
    return sorted(set(found))


def write_lock(ctx, pools, token_files, mix) -> dict[str, Any]:
    m = ctx.manifest
    models = sorted({v for s in ctx.sources.values() for f in s.filters for k, v in f.items() if k in MODEL_KEYS and isinstance(v, str)})
    from curation.stages.decontaminate import eval_files

    lock = {
        "lock_version": LOCK_VERSION,
        "name": m.name,
        "version": m.version,
        "seed": m.seed,
        "manifest_path": str(ctx.loaded.path),
        "manifest_sha256": ctx.loaded.sha256,
        "code_version": curation.__version__,
        "libraries": library_versions(),
        "inputs": [dict(file_entry(p.input_uri), source=p.source) for p in pools],
        "tokenizer": file_entry(ctx.tokenizer_path),
        "models": [file_entry(p) for p in models],
        "eval_sets": [file_entry(p) for p in eval_files(m.decontaminate, ctx.loaded)],
        "outputs": [dict(file_entry(storage.join(ctx.layout.root, rel)), uri=rel) for rel in output_files(ctx.layout.root)],
    }
    with storage.atomic_write(ctx.layout.lock_file) as f:
        f.write(orjson.dumps(lock, option=orjson.OPT_INDENT_2))
    return lock
