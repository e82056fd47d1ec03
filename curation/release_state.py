"""Whether a release is finished. A release is complete once its lock.json is written; until then its folder
holds an `INCOMPLETE` file, written before any product and removed after the lock. Every finished shard has
its sidecar, so without the marker a reader trusting sidecars could take a stopped run's half release for
a finished one."""

from __future__ import annotations

from curation import storage
from curation.errors import InputError

INCOMPLETE = "INCOMPLETE"
_NOTE = (
    b"This release is unfinished: its run is going on, or was stopped before lock.json was written.\n"
    b"Nothing here is final. Run `curation run` with its manifest again to finish it.\n"
)


def marker(root: str) -> str:
    return storage.join(root, INCOMPLETE)


def mark_incomplete(root: str) -> None:
    with storage.atomic_write(marker(root)) as f:
        f.write(_NOTE)


def mark_complete(root: str) -> None:
    storage.remove(marker(root))


def check_complete(root: str) -> None:
    """Commands reading a release refuse an unfinished one in one line."""
    if storage.exists(marker(root)) or (
        storage.exists(storage.join(root, "release.json")) and not storage.exists(storage.join(root, "lock.json"))
    ):
        raise InputError(
            f"{root}: incomplete release: its run was stopped before lock.json was written, so nothing in it is "
            "final; run `curation run` with its manifest again to finish it"
        )
