"""Duplicate ids within a source, found before any decision keys on them. Ledgers, dedupe, the verdicts and
the audit index all name a document by (source, id), so two records sharing one would be merged or both
lost. The first occurrence in input order (file order, then position in the file) keeps the id; every later
one is quarantined as `duplicate_id` or, with the source's `ids: derive`, renamed to a stable derived id.
A verbatim repeat is the same case: one copy survives, and exact dedupe never sees two records with one key."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

import apache_beam as beam
import orjson

from curation import storage
from curation.stages.curate import PoolFile

DUPLICATE_ID = "duplicate_id"


class Occurrence(NamedTuple):
    """Where a record with a given id sits: pool ordinal (input order), position in the pool, line/offset."""

    ordinal: int
    position: int
    line: int | None
    offset: int | None


def id_occurrences(element: tuple[int, PoolFile]) -> Iterator[tuple[tuple[str, str], tuple]]:
    ordinal, pool = element
    with storage.open_decompressed(pool.documents_uri) as f:
        for position, line in enumerate(f):
            doc = orjson.loads(line)
            prov = doc.get("provenance") or {}
            yield (pool.source, doc["id"]), tuple(Occurrence(ordinal, position, prov.get("line"), prov.get("offset")))


def later_occurrences(key: tuple[str, str], occurrences: list[tuple]) -> Iterator[tuple[int, tuple[int, dict[str, Any]]]]:
    """(pool ordinal, (position, duplicate)) for every occurrence of an id but the first in input order."""
    if len(occurrences) < 2:
        return
    first, *later = sorted(Occurrence(*o) for o in occurrences)
    for o in later:
        yield o.ordinal, (o.position, {"id": key[1], "first": list(first)})


class FindDuplicateIds(beam.PTransform):
    """(ordinal, PoolFile) in; (pool ordinal, (position, {"id", "first": occurrence})) out for each later
    occurrence of an id. `group` is the grouping transform to use (decide's grouping through run files)."""

    def __init__(self, group: beam.PTransform):
        super().__init__()
        self._group = group

    def expand(self, pools):
        return (
            pools
            | "IdOccurrences" >> beam.FlatMap(id_occurrences)
            | "GroupById" >> self._group
            | "LaterOccurrences" >> beam.FlatMapTuple(later_occurrences)
        )
