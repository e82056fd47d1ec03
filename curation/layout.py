"""Where a run writes: the products in `<output.path>/<name>/<version>/`, and the content-addressed
intermediate results (pools, decisions, token caches, indexes) in `<output.path>/_cache/`, shared by every
manifest writing under the same path: a stage-two blend or a re-thresholded version reuses the pools an
earlier run scored. (Manifest names start with a letter or digit, so `_cache` never collides with one.)"""

from __future__ import annotations

from dataclasses import dataclass

from curation import storage

CACHE_DIR = "_cache"


@dataclass(frozen=True)
class RunLayout:
    root: str
    cache: str

    @classmethod
    def for_manifest(cls, output_path: str, name: str, version: str) -> RunLayout:
        return cls(storage.join(output_path, name, version), storage.join(output_path, CACHE_DIR))

    @classmethod
    def from_root(cls, root: str) -> RunLayout:
        """The layout of an existing output folder `<output.path>/<name>/<version>`."""
        output_path = root.rstrip("/").rsplit("/", 2)[0]
        return cls(root.rstrip("/"), storage.join(output_path, CACHE_DIR))

    # Beside the cache, not in it: `curation regenerate` moves the cache aside while it holds the lock.
    @property
    def run_lock_file(self) -> str:
        return self.cache + ".lock"

    def cached(self, *parts: str) -> str:
        return storage.join(self.cache, *parts)

    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    # Claim on the folder: the manifest hash that owns this name and version.
    @property
    def release_file(self) -> str:
        return self.path("release.json")

    @property
    def manifest_copy(self) -> str:
        return self.path("manifest.yaml")

    def pool_prefix(self, source: str, file_digest: str) -> str:
        return self.cached("pool", source, file_digest)

    def decisions_dir(self, decisions_digest: str) -> str:
        return self.cached("decisions", decisions_digest)

    def work_dir(self, decisions_digest: str) -> str:
        """Scratch of one decide run, removed when it ends."""
        return self.cached("work", decisions_digest)

    def tokens_prefix(self, source: str, tokens_digest: str) -> str:
        return self.cached("tokens", source, tokens_digest)

    @property
    def shards_dir(self) -> str:
        return self.path("shards")

    @property
    def documents_dir(self) -> str:
        return self.path("documents")

    @property
    def documents_markers_dir(self) -> str:
        """Where a marker says a source's documents are all published: beside documents/, not in it, so
        readers of that folder (datatrove's JsonlReader, Hugging Face datasets) find documents only."""
        return self.path("documents_complete")

    @property
    def ledger_dir(self) -> str:
        return self.path("ledger")

    @property
    def stats_file(self) -> str:
        return self.path("stats.json")

    @property
    def lock_file(self) -> str:
        return self.path("lock.json")

    @property
    def decontamination_dir(self) -> str:
        return self.path("decontamination")
