"""Publish the curated documents of a run: per source, the kept documents (after every decision and
edit, with their attributes and provenance) in input order, as rolling Dolma-style files."""

from __future__ import annotations

import apache_beam as beam
import orjson

from curation import storage
from curation.engine import pipeline_options, run_pipeline
from curation.stages.tokenize import TokenFile
from curation.writers import DocumentWriter


def marker(markers_dir: str, source: str) -> str:
    return storage.join(markers_dir, f"{source}.json")


class _WriteSourceDocumentsFn(beam.DoFn):
    def __init__(self, out_dir: str, markers_dir: str, fmt: str, target_bytes: int):
        self._out_dir = out_dir
        self._markers_dir = markers_dir
        self._fmt = fmt
        self._target_bytes = target_bytes

    def process(self, element: tuple[str, list[TokenFile]]):
        source, files = element
        folder = storage.join(self._out_dir, source)
        with DocumentWriter(storage.join(folder, "part"), self._fmt, self._target_bytes) as writer:
            for tf in sorted(files, key=lambda t: t.input_ordinal):
                with storage.open_decompressed(tf.documents_uri) as f:
                    for line in f:
                        writer.write(orjson.loads(line))
        written = writer.close()
        with storage.atomic_write(marker(self._markers_dir, source)) as f:
            f.write(orjson.dumps({"files": [w.rsplit("/", 1)[-1] for w in written]}))
        yield source, written


def publish_documents(ctx, token_files: list[TokenFile]) -> None:
    output = ctx.manifest.output
    if not output.write_documents:
        return
    out_dir, markers_dir = ctx.layout.documents_dir, ctx.layout.documents_markers_dir
    by_source: dict[str, list[TokenFile]] = {name: [] for name in ctx.sources}
    for tf in token_files:
        by_source[tf.source].append(tf)
    todo = [(s, fs) for s, fs in sorted(by_source.items()) if not storage.exists(marker(markers_dir, s))]
    if todo:
        ctx.log(f"[publish] curated documents of {len(todo)} sources")
        run_pipeline(
            pipeline_options(ctx.beam_args, len(todo)),
            lambda p: p
            | "ListSources" >> beam.Create(todo)
            | "WriteDocuments" >> beam.ParDo(_WriteSourceDocumentsFn(out_dir, markers_dir, output.documents_format, output.documents_target_bytes)),
            log_path=ctx.worker_log("publish"),
        )
