"""Content digests that name intermediate outputs, so a rerun recognises finished work (resume) and a
changed input or config can never reuse a stale result."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

import orjson

import curation

# Bumped when a change to the code changes what a stage writes for the same inputs and config.
CODE_VERSION = f"curation-{curation.__version__}"


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot digest {type(value).__name__}")


def digest(*parts: Any, length: int = 24) -> str:
    """Hex digest of the canonical JSON of `parts` (dataclasses included), truncated to `length`."""
    payload = orjson.dumps(parts, default=_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.sha256(payload).hexdigest()[:length]
