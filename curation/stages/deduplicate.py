"""Adapter from the run to the dedupe library (filters/dedupe)."""


def deduplicate_stage(kept_batches, config):
    raise RuntimeError("deduplication is not wired yet")
