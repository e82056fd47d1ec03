"""Documents travel in batches inside DoFns, so per-element overhead is paid once per batch (Beam's advice
for fine-grained records); one helper and one default size serve every stage."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

# Documents per batch: large enough to amortise per-element costs, small enough to bound memory.
BATCH_DOCUMENTS = 512


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last may be shorter); itertools.batched arrives in 3.12."""
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch
