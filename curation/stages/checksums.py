"""The lock's output checksums, taken on a pipeline's workers: each output file is hashed where it lies (a
shard's digests come from its sidecar), and the launcher reads back one small file of entries, whatever the
size of the output (issue #12: nothing that grows with the corpus runs in the launcher)."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import orjson

from curation import storage
from curation.engine import GatherToList, SpreadOverWorkers
from curation.lock import matching_outputs, output_entry


class _OutputEntriesFn(beam.DoFn):
    def __init__(self, root: str):
        self._root = root

    def process(self, rel: str):
        yield output_entry(self._root, rel)


def _write_entries(entries: list[dict[str, Any]], uri: str) -> None:
    with storage.atomic_write(uri) as f:
        f.write(orjson.dumps(sorted(entries, key=lambda e: e["uri"])))


def checksums_work_dir(ctx) -> str:
    # Its own folder, not dedupe's scratch (`work/`), removed whole so no empty folder is left behind.
    return ctx.layout.cached("checksums", f"{ctx.manifest.name}-{ctx.manifest.version}")


def entries_uri(work_dir: str) -> str:
    return storage.join(work_dir, "outputs.json")


class ChecksumOutputs(beam.PTransform):
    """From a collection of output patterns (curation.lock), the entry of every file they match, hashed on
    the workers and written sorted by path to `entries_uri(work_dir)`, which `read_entries` reads back."""

    def __init__(self, root: str, work_dir: str):
        super().__init__()
        self._root = root
        self._work_dir = work_dir

    def expand(self, patterns):
        root = self._root
        return (
            patterns
            | "ListFiles" >> beam.FlatMap(lambda pattern: matching_outputs(root, pattern))
            | "Spread" >> SpreadOverWorkers()
            | "HashFiles" >> beam.ParDo(_OutputEntriesFn(root))
            | "Gather" >> GatherToList()
            | "WriteEntries" >> beam.Map(_write_entries, entries_uri(self._work_dir))
        )


def read_entries(work_dir: str) -> list[dict[str, Any]]:
    with storage.open_binary(entries_uri(work_dir)) as f:
        return orjson.loads(f.read())
