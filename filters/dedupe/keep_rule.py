"""Which copy of a duplicate group is kept: a total order that never depends on arrival order.

Listed sources first in manifest priority order, then unlisted sources by name, then the smallest
content hash, then the doc id. The same rule serves exact, URL, MinHash and paragraph dedup.
"""

from __future__ import annotations

from typing import NamedTuple


class KeepKey(NamedTuple):
    source_rank: int
    source: str
    content_hash: str
    doc_id: str


def keep_key(source: str, doc_id: str, content_hash: str, priority: list[str] | tuple[str, ...]) -> KeepKey:
    rank = priority.index(source) if source in priority else len(priority)
    return KeepKey(rank, source, content_hash, doc_id)
