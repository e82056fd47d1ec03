"""Where a release's files are named: every local path an output or a lock records is relative to the
manifest's folder (S3 URIs are kept whole), so a copy of the manifest and its data in another place, laid out
the same, writes the same bytes. Inputs that moved on their own are found again through `moves`: pairs of a
folder as recorded (relative to the manifest's folder, or an s3:// prefix) and where it is now, as
`curation regenerate --input-root OLD=NEW` gives them; `.` for OLD names the manifest's folder itself."""

from __future__ import annotations

import os
import posixpath

from curation import storage
from curation.errors import InputError

Moves = tuple[tuple[str, str], ...]


def recorded_name(location: str, base: str, moves: Moves = ()) -> str:
    """How a file read at `location` is named in outputs: under a moved folder, by its old name; otherwise
    an S3 URI as it is, a local path relative to `base` (the manifest's folder)."""
    moved = _through(location, tuple((new, old) for old, new in moves))
    if moved is not None:
        return moved
    return location if storage.is_s3(location) else os.path.relpath(location, base)


def current_location(name: str, base: str, moves: Moves = ()) -> str:
    """Where a recorded name is read now: below the new folder of a move that holds it, else in `base`."""
    moved = _through(name, moves)
    if moved is not None:
        return moved
    return name if storage.is_s3(name) else os.path.normpath(os.path.join(base, name))


def unused_moves(names: list[str], moves: Moves) -> Moves:
    """The moves from a folder none of the recorded `names` lies in (`.`, the manifest's own folder, is never
    unused): without a word they would change nothing, as a mistyped OLD does."""
    return tuple((old, new) for old, new in moves if old != "." and all(_below(name, old) is None for name in names))


def _through(path: str, moves: Moves) -> str | None:
    """`path` carried from the first folder of the first move that holds it to the second; None if none does."""
    for source, target in moves:
        rest = _below(path, source)
        if rest is not None:
            return _joined(target, rest)
    return None


def _below(path: str, folder: str) -> str | None:
    """`path` relative to `folder` when it lies in it ("" for the folder itself), else None."""
    folder = folder.rstrip("/")
    if path == folder:
        return ""
    return path[len(folder) + 1 :] if path.startswith(folder + "/") else None


def _joined(folder: str, rest: str) -> str:
    if not rest:
        return folder
    return storage.join(folder, rest) if storage.is_s3(folder) else os.path.normpath(os.path.join(folder, rest))


def parse_move(text: str) -> tuple[str, str]:
    """An `--input-root OLD=NEW` value: OLD as the lock names it, NEW a local folder (made absolute) or an
    s3:// prefix."""
    old, sep, new = text.partition("=")
    if not sep or not old or not new:
        raise InputError(
            f"--input-root {text!r}: give OLD=NEW, OLD a folder as the lock names its inputs (relative to the "
            "manifest's folder, `.` for that folder itself, or an s3:// prefix) and NEW where that folder is now"
        )
    old = old.rstrip("/") if storage.is_s3(old) else posixpath.normpath(old)
    return old, (new.rstrip("/") if storage.is_s3(new) else os.path.abspath(new))
