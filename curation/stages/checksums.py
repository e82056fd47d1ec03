"""The lock's output checksums, taken on a pipeline's workers: each output file is hashed where it lies (a
shard's digests come from its sidecar), and the launcher reads back one small file of entries, whatever the
size of the output (issue #12: nothing that grows with the corpus runs in the launcher)."""

from __future__ import annotations

from typing import Any

import apache_beam as beam
import orjson

from curation import storage
from curation.engine import pipeline_options, run_pipeline
from curation.lock import OUTPUT_PATTERNS, matching_outputs, output_entry


class _OutputEntriesFn(beam.DoFn):
    def __init__(self, root: str):
        self._root = root

    def process(self, rel: str):
        yield output_entry(self._root, rel)


def _write_entries(entries: list[dict[str, Any]], uri: str) -> None:
    with storage.atomic_write(uri) as f:
        f.write(orjson.dumps(sorted(entries, key=lambda e: e["uri"])))


def output_entries(ctx) -> list[dict[str, Any]]:
    """Every output file's entry, sorted by path, hashed on the pipeline's workers: the launcher reads back
    one small file, whatever the size of the output."""
    root = ctx.layout.root
    # Its own folder, not dedupe's scratch (`work/`), removed whole so no empty folder is left behind.
    folder = ctx.layout.cached("checksums", f"{ctx.manifest.name}-{ctx.manifest.version}")
    result = storage.join(folder, "outputs.json")
    storage.remove_tree(folder)
    run_pipeline(
        pipeline_options(ctx.beam_args, len(OUTPUT_PATTERNS)),
        lambda p: p
        | "ListPatterns" >> beam.Create(OUTPUT_PATTERNS)
        | "ListFiles" >> beam.FlatMap(lambda pattern: matching_outputs(root, pattern))
        | "Spread" >> beam.Reshuffle()
        | "HashFiles" >> beam.ParDo(_OutputEntriesFn(root))
        | "Gather" >> beam.combiners.ToList()
        | "WriteEntries" >> beam.Map(_write_entries, result),
        log_path=ctx.worker_log("lock"),
    )
    with storage.open_binary(result) as f:
        entries = orjson.loads(f.read())
    storage.remove_tree(folder)
    return entries
