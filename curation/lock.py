"""lock.json beside every output: everything needed to rebuild it byte for byte and to prove it did —
the manifest hash, code and library versions, every input with its size and sha256 (S3: ETag too),
the models, tokenizer and eval sets by sha256, each WARC source's HTML extractor with its library
versions, the seeds, and the sha256 of every output file. The audit index and the dataset card are
derived before the checksums are taken, so the lock covers them too."""

from __future__ import annotations

import importlib.metadata
import os
import platform
from typing import Any, Callable

import orjson

import curation
from curation import storage
from curation.errors import InputError
from filters.registry import LIST_KEYS, MODEL_KEYS, plugin_of
from mixes.shards import ShardPaths, sidecar_digest

LIBRARIES = (
    "apache-beam",
    "tokenizers",
    "tiktoken",
    "fasttext-numpy2-wheel",
    "datatrove",
    "tldextract",
    "pyahocorasick",
    "pyarrow",
    "numpy",
    "zstandard",
)
LOCK_VERSION = 2


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
    return storage.FileDigest(uri, st.size, storage.sha256(uri), st.etag).to_dict()


def input_entry(pool) -> dict[str, Any]:
    """The input as curate hashed it while reading it, so no input is read again here. A pool without that
    digest (written by an older version) has it taken now; an input quarantined as unreadable has none:
    its entry says why instead."""
    if pool.input_file is not None:
        return pool.input_file
    try:
        return dict(file_entry(pool.input_uri), uri=pool.input_name)
    except storage.UnreadableFile as exc:
        size = storage.stat(pool.input_uri).size
        return {"uri": pool.input_name, "size": size, "sha256": None, "unreadable": str(exc)}


# Releases made before completion markers moved out of documents/ (2026-11-29) keep each source's marker at
# documents/<source>/_complete.json, and their locks list it there: the lock is what says a release's layout.
MARKERS_DIR, OLD_MARKER = "documents_complete/", "_complete.json"


# Where the products of a run (everything but its logs and the lock itself) lie in its folder: those the
# run's last pipeline hashes on its workers once it has written them, and the summaries the launcher writes
# after it from the counts it read back (small: per source and per shard), hashed in the launcher.
HASHED_ON_WORKERS = (
    "shards/*",
    "documents/*/*",
    MARKERS_DIR + "*",
    "ledger/*",
    "decontamination/*",
    "audit/*",
    "audit/shards/*",
    "manifest.yaml",
    "release.json",
)
SUMMARIES = ("stats.json", "card.*")
OUTPUT_PATTERNS = HASHED_ON_WORKERS + SUMMARIES


def locked_name(lock: dict[str, Any]) -> Callable[[str], str]:
    """The name `lock` gives the output this code writes at `rel`: the same, but a source's completion marker
    in the older layout when the lock lists its markers there."""
    old_layout = any(e["uri"].startswith("documents/") and e["uri"].endswith("/" + OLD_MARKER) for e in lock["outputs"])

    def name(rel: str) -> str:
        if old_layout and rel.startswith(MARKERS_DIR):
            return f"documents/{rel.removeprefix(MARKERS_DIR).removesuffix('.json')}/{OLD_MARKER}"
        return rel

    return name


def matching_outputs(root: str, pattern: str) -> list[str]:
    """The files of the output folder `root` matching one of OUTPUT_PATTERNS, relative."""
    try:
        return [storage.relative(uri, root) for uri in storage.list_files(storage.join(root, pattern))]
    except InputError:
        return []


def output_files(root: str) -> list[str]:
    """The products of a run, relative, sorted."""
    return sorted({rel for pattern in OUTPUT_PATTERNS for rel in matching_outputs(root, pattern)})


def seeds(manifest) -> dict[str, Any]:
    """The mix seed and every name other seeds are derived from (MinHash permutations)."""
    found: dict[str, Any] = {"mix": manifest.seed}
    minhash = getattr(manifest.dedupe, "minhash", None) if manifest.dedupe is not None else None
    if minhash is not None:
        found["minhash_seed_name"] = minhash.seed_name
    return found


def run_facts(ctx, pools) -> dict[str, Any]:
    """Everything the lock records about how the output was made (all but the output checksums)."""
    from curation.stages.decontaminate import eval_files

    m = ctx.manifest
    specs = [f for s in ctx.sources.values() for f in s.filters]
    models = _named_files(specs, MODEL_KEYS)

    def named_entry(location: str) -> dict[str, Any]:
        return dict(file_entry(location), uri=ctx.loaded.recorded(location))

    return {
        "lock_version": LOCK_VERSION,
        "name": m.name,
        "version": m.version,
        "seeds": seeds(m),
        "manifest_path": manifest_path(ctx.loaded),
        "manifest_sha256": ctx.loaded.sha256,
        "code_version": curation.__version__,
        "python": platform.python_version(),
        "libraries": library_versions(),
        "inputs": [dict(input_entry(p), source=p.source) for p in pools],
        "tokenizer": named_entry(ctx.tokenizer_path),
        "models": [named_entry(p) for p in models],
        "filter_lists": [named_entry(p) for p in _named_files(specs, LIST_KEYS)],
        "plugins": plugins(specs),
        "extractors": extractors(ctx.sources, pools),
        "eval_sets": [named_entry(p) for p in eval_files(m.decontaminate, ctx.loaded)],
    }


def manifest_path(loaded) -> str:
    """Where the manifest is, relative to the release folder its own output.path gives: every other path in
    the lock is relative to the manifest's folder, so the release finds its inputs from wherever the tree is.
    From the manifest as written (a rebuild elsewhere writes the same), and for an output on S3 only the
    file's name."""
    declared = loaded.absolute(loaded.raw["output"]["path"])
    if storage.is_s3(declared):
        return loaded.path.name
    return os.path.relpath(loaded.path, os.path.join(declared, loaded.manifest.name, loaded.manifest.version))


def locked_manifest_path(lock: dict[str, Any], root: str, moves=()) -> str:
    """Where the manifest of the release at `root` would be now, so where the lock's relative paths start
    from: in the folder a move from `.` names (`regenerate --input-root .=FOLDER`), else found from the
    release folder, or for a release on S3 in the current folder."""
    moved_to = dict(moves).get(".")
    if moved_to is not None:
        return os.path.join(moved_to, os.path.basename(lock["manifest_path"]))
    return os.path.normpath(os.path.join(os.getcwd() if storage.is_s3(root) else root, lock["manifest_path"]))


def _named_files(specs: list[dict[str, Any]], keys: tuple[str, ...]) -> list[str]:
    """The files filter specs name under `keys`, sorted; a folder (a `_dir` key) stands for its `.txt` lists."""
    found = set()
    for spec in specs:
        for key, value in spec.items():
            if key in keys and isinstance(value, str):
                found.update(storage.list_files(storage.join(value, "*.txt")) if key.endswith("_dir") else [value])
    return sorted(found)


def plugins(specs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Each filter from an installed package that the chains use, with its distribution and version."""
    used = sorted({spec["use"] for spec in specs})
    return [
        {"filter": name, "distribution": p.distribution, "version": p.version}
        for name in used
        if (p := plugin_of(name)) is not None
    ]


def extractors(sources, pools) -> list[dict[str, Any]]:
    """The HTML extractor of each source that read WARC pages: its name, function and library versions."""
    from curation.readers import html_extraction

    used = {}
    for pool in pools:
        extraction = html_extraction(sources[pool.source], pool.input_uri)
        if extraction is not None:
            used[pool.source] = extraction
    return [dict(used[name], source=name) for name in sorted(used)]


def output_entry(root: str, rel: str) -> dict[str, Any]:
    """The lock's entry for one output file: its size and sha256, read from its shard's sidecar when it has
    one (a shard's files are hashed while they are written), so a shard is not read a second time."""
    uri = storage.join(root, rel)
    digest = None
    if rel.startswith("shards/") and not rel.endswith(".json"):
        with storage.open_binary(ShardPaths.beside(uri).sidecar) as f:
            digest = sidecar_digest(orjson.loads(f.read()), rel.rsplit("/", 1)[-1])
    if digest is not None:
        st = storage.stat(uri)
        entry = {"uri": rel, "size": st.size, "sha256": digest}
        return dict(entry, etag=st.etag) if st.etag else entry
    return dict(file_entry(uri), uri=rel)


def write_lock(ctx, pools, hashed_on_workers: list[dict[str, Any]]) -> dict[str, Any]:
    """The card, then lock.json with every output's entry: those the workers took (HASHED_ON_WORKERS) and
    the summaries', taken here."""
    from curation.card import write_card

    lock = run_facts(ctx, pools)
    root = ctx.layout.root
    write_card(root, lock)
    summaries = [output_entry(root, rel) for pattern in SUMMARIES for rel in matching_outputs(root, pattern)]
    lock["outputs"] = sorted(hashed_on_workers + summaries, key=lambda e: e["uri"])
    with storage.atomic_write(ctx.layout.lock_file) as f:
        f.write(orjson.dumps(lock, option=orjson.OPT_INDENT_2))
    return lock


def read_lock(path: str) -> dict[str, Any]:
    if not storage.exists(path):
        raise InputError(f"{path}: no lock file here")
    with storage.open_binary(path) as f:
        try:
            lock = orjson.loads(f.read())
        except orjson.JSONDecodeError as exc:
            raise InputError(f"{path}: not a lock file (invalid JSON: {exc}); restore it from a copy") from None
    if not isinstance(lock, dict):
        raise InputError(f"{path}: not a lock file (JSON {type(lock).__name__}, not an object)")
    if lock.get("lock_version") != LOCK_VERSION:
        raise InputError(
            f"{path}: lock version {lock.get('lock_version')}, this code reads version {LOCK_VERSION}"
        )
    return lock


def pool_uris(lock: dict[str, Any], root: str) -> list[str]:
    """The pools left in the output's cache for the locked inputs: they explain dropped documents. Pools are
    named by input identity (size, mtime), which a lock does not fix, so one per input is picked by name."""
    from curation.layout import RunLayout
    from curation.stages.curate import PoolFile

    wanted = {(e["source"], e["uri"]) for e in lock["inputs"]}
    chosen: dict[tuple[str, str], str] = {}
    try:
        metas = storage.list_files(RunLayout.from_root(root).cached("pool", "*", "*.meta.json"))
    except InputError:
        return []
    for meta in metas:
        with storage.open_binary(meta) as f:
            pool = PoolFile.from_dict(orjson.loads(f.read()))
        if (pool.source, pool.input_name) in wanted:
            chosen[(pool.source, pool.input_name)] = pool.documents_uri
    return [chosen[k] for k in sorted(chosen)]
