"""Where a run writes: `<output.path>/<name>/<version>/` with the final products at the top and the
content-addressed intermediate results (pools, decisions, token caches) under `work/`."""

from __future__ import annotations

from dataclasses import dataclass

from curation import storage


@dataclass(frozen=True)
class RunLayout:
    root: str

    @classmethod
    def for_manifest(cls, output_path: str, name: str, version: str) -> RunLayout:
        return cls(storage.join(output_path, name, version))

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
        return self.path("work", "pool", source, file_digest)

    def decisions_dir(self, decisions_digest: str) -> str:
        return self.path("work", "decisions", decisions_digest)

    def tokens_prefix(self, source: str, tokens_digest: str) -> str:
        return self.path("work", "tokens", source, tokens_digest)

    @property
    def shards_dir(self) -> str:
        return self.path("shards")

    @property
    def documents_dir(self) -> str:
        return self.path("documents")

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
