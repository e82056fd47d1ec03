"""Rebuild a release from its lock file and prove it is the same: every input, model, tokenizer and eval set
is checked against the lock first. A local release is moved aside (and the shared cache set aside, so nothing
is reused) and the manifest re-run into the same place. A release on S3, where nothing can be renamed, or one
given another place with `into`, stays as it is: the manifest is re-run under a separate, empty output path,
with its own cache. Every output checksum is then compared with the lock and with the old files; for a shard
the first differing document is named (after OLMo's and Dolma's "rebuild from the manifest" reproducibility
claims, made checkable)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from curation import run_lock, storage
from curation.errors import CurationError, InputError
from curation.layout import RunLayout
from curation.lock import locked_manifest_path, locked_name, output_files, read_lock
from curation.places import Moves, current_location, unused_moves
from curation.released import load_manifest_copy
from mixes.manifest import LoadedManifest
from mixes.shards import read_shard

PREVIOUS_SUFFIX = ".previous"
# Where a release that stays in place is rebuilt by default, beside its cache: `_` names no manifest.
REBUILD_DIR = "_regenerate"


class InputDriftError(CurationError):
    """Inputs no longer match the lock, so a rebuild could not reproduce the release."""


@dataclass(frozen=True)
class Drift:
    uri: str
    problem: str
    # Where the file was looked for, when not at `uri` as the lock names it.
    location: str | None = None

    def __str__(self) -> str:
        return f"{self.uri}: {self.problem}"


@dataclass(frozen=True)
class OutputDifference:
    """An output file whose rebuilt or existing bytes differ from the lock."""

    path: str
    locked_sha256: str | None
    existing_sha256: str | None
    rebuilt_sha256: str | None
    first_differing_document: str | None = None

    def __str__(self) -> str:
        if self.rebuilt_sha256 is None:
            problem = "not rebuilt"
        elif self.locked_sha256 is None:
            problem = "rebuilt but not in the lock"
        elif self.rebuilt_sha256 != self.locked_sha256:
            problem = "rebuild differs from the lock"
        else:
            problem = "rebuild matches the lock but the existing file was altered after the run"
        where = (
            f"; first differing document: {self.first_differing_document}"
            if self.first_differing_document
            else ""
        )
        return f"{self.path}: {problem}{where}"


@dataclass(frozen=True)
class RegenerateReport:
    root: str
    previous: str | None
    differences: list[OutputDifference]
    library_changes: list[str]
    # A rebuild made beside the release (S3, or `into`), when it is kept.
    rebuilt: str | None = None

    @property
    def identical(self) -> bool:
        return not self.differences


def _locked_files(lock: dict[str, Any]) -> list[dict[str, Any]]:
    return [*lock["inputs"], lock["tokenizer"], *lock["models"], *lock.get("filter_lists", []), *lock["eval_sets"]]


def drifted_files(lock: dict[str, Any], root: str, moves: Moves = ()) -> list[Drift]:
    """Every input, tokenizer, model and eval set whose presence, size, ETag or sha256 differs from the lock,
    each looked for from the release folder `root` (its paths are relative to the manifest's folder), or
    where `moves` say it is now."""
    drifts = []
    base = os.path.dirname(locked_manifest_path(lock, root, moves))
    for entry in _locked_files(lock):
        name = entry["uri"]
        uri = current_location(name, base, moves)
        if not storage.exists(uri):
            drifts.append(Drift(name, "missing", uri))
            continue
        st = storage.stat(uri)
        if st.size != entry["size"]:
            drifts.append(Drift(name, f"size {entry['size']:,} bytes in the lock, now {st.size:,}"))
        elif entry.get("etag") and st.etag != entry["etag"]:
            drifts.append(Drift(name, f"ETag {entry['etag']} in the lock, now {st.etag}"))
        elif storage.sha256(uri, entry["size"]) != entry["sha256"]:
            drifts.append(Drift(name, "same size but sha256 differs from the lock"))
    return drifts


def library_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    changes = []
    for key in ("code_version", "python"):
        if old.get(key) != new.get(key):
            changes.append(f"{key}: {old.get(key)} -> {new.get(key)}")
    for name in sorted(set(old["libraries"]) | set(new["libraries"])):
        a, b = old["libraries"].get(name), new["libraries"].get(name)
        if a != b:
            changes.append(f"{name}: {a} -> {b}")
    return changes


def release_root(lock_path: str) -> str:
    """The folder (local, resolved) or S3 prefix holding a lock file."""
    if storage.is_s3(lock_path):
        return lock_path.rsplit("/", 1)[0]
    return str(Path(lock_path).resolve().parent)


def output_path_of(root: str) -> str:
    """The `output.path` a release folder `<output.path>/<name>/<version>` was written under."""
    return root.rstrip("/").rsplit("/", 2)[0]


def check_release_folder(lock: dict[str, Any], root: str) -> None:
    """Regenerate rebuilds `<output>/<name>/<version>/` two levels up (in place, or under another output
    path), so the lock must sit in exactly that folder, claimed (release.json) by the same manifest: a lock
    copied anywhere else moves and writes nothing."""
    name, version = lock["name"], lock["version"]
    if root.rstrip("/").rsplit("/", 2)[-2:] != [name, version]:
        raise InputError(
            f"{root}: not the release folder <output>/{name}/{version}/ of this lock ({name} {version}); "
            "regenerate only with the lock.json inside its release"
        )
    claim_file = RunLayout.from_root(root).release_file
    claimed = _read_json(claim_file)
    wanted = {"name": name, "version": version, "manifest_sha256": lock["manifest_sha256"]}
    if {key: claimed.get(key) for key in wanted} != wanted:
        raise InputError(
            f"{claim_file}: missing or not a claim of {name} {version} by manifest "
            f"{lock['manifest_sha256'][:12]}, so this is not the lock's release; regenerate only with the "
            "lock.json inside its release"
        )


def _read_json(uri: str) -> dict[str, Any]:
    """A JSON object file (the release.json claim, stats.json), or nothing when it is missing, unreadable or
    not a JSON object."""
    try:
        with storage.open_binary(uri) as f:
            found = orjson.loads(f.read())
    except (InputError, orjson.JSONDecodeError):
        return {}
    return found if isinstance(found, dict) else {}


def check_output_uris(lock: dict[str, Any], root: str) -> None:
    """Every locked output is a path inside the release folder: each is read in the old output and in the
    rebuild, so one that leaves it (`../`, absolute, through a symlink) would hash files the release never
    wrote."""
    for entry in lock["outputs"]:
        rel = entry["uri"]
        if os.path.isabs(rel) or ".." in Path(rel).parts or not _inside(root, rel):
            raise InputError(
                f"{root}: the lock's output {rel!r} is not a path inside this release folder; a lock lists "
                "only its release's own files, so restore the lock.json the release was written with"
            )


def _inside(root: str, rel: str) -> bool:
    """`rel` names a file below `root`: on S3 a key with no empty part; locally, once symlinks are resolved."""
    if storage.is_s3(root):
        return "" not in rel.split("/")
    real_root = os.path.realpath(root)
    return os.path.realpath(os.path.join(real_root, rel)).startswith(real_root + os.sep)


def locked_manifest(lock: dict[str, Any], root: str, output_path: str, moves: Moves = ()) -> LoadedManifest:
    """The manifest of the release at `root`, writing under `output_path`: its copy in the release, which must
    match the lock's hash, name and version. Relative paths resolve against the original manifest's folder,
    found from the release folder as the lock's manifest_path says (inputs that moved, where `moves` say),
    but the file there is never read: it may have moved or changed since, or (edited) name anything."""
    copy = RunLayout.from_root(root).manifest_copy
    loaded = load_manifest_copy(root)
    if loaded.sha256 != lock["manifest_sha256"]:
        raise InputDriftError(f"{copy}: its hash differs from the lock's manifest_sha256")
    named = (loaded.manifest.name, loaded.manifest.version)
    if named != (lock["name"], lock["version"]):
        # The rebuild writes to the manifest's name and version: only the lock's are its release folder.
        raise InputError(
            f"{copy}: the manifest is {' '.join(named)}, the lock {lock['name']} {lock['version']}; "
            "regenerate only with the lock.json the release was written with"
        )
    manifest = dataclasses.replace(
        loaded.manifest, output=dataclasses.replace(loaded.manifest.output, path=output_path)
    )
    return dataclasses.replace(loaded, manifest=manifest, path=Path(locked_manifest_path(lock, root, moves)), moves=moves)


def carry_claim(previous: str, layout: RunLayout) -> None:
    """Start the rebuild from the release's claim and manifest copy, both checked against the lock: the run
    then finds its release claimed, and never copies the file at the lock's manifest_path."""
    for claim_file in (layout.release_file, layout.manifest_copy):
        with storage.open_binary(storage.join(previous, claim_file.rsplit("/", 1)[-1])) as f:
            claim = f.read()
        with storage.atomic_write(claim_file) as out:
            out.write(claim)


def _sha256_or_none(path: str) -> str | None:
    return storage.sha256(path) if storage.exists(path) else None


def first_differing_document(a_path: str, b_path: str) -> str | None:
    """The first document (in shard order) whose index row or tokens differ between two copies of a shard."""
    try:
        a, b = read_shard(a_path), read_shard(b_path)
    except (OSError, ValueError) as exc:
        return f"shard unreadable ({exc})"
    a_rows, b_rows = a.index.to_pylist(), b.index.to_pylist()
    for i, (ra, rb) in enumerate(zip(a_rows, b_rows)):
        if ra != rb or not np.array_equal(
            a.tokens[ra["start"] : ra["end"]], b.tokens[rb["start"] : rb["end"]]
        ):
            return f"#{i} {ra['doc_id']} (source {ra['source']}, tokens {ra['start']}..{ra['end']})"
    if len(a_rows) != len(b_rows):
        return (
            f"#{min(len(a_rows), len(b_rows))}: one copy has {len(a_rows)} documents, the other {len(b_rows)}"
        )
    return None


def compare_outputs(lock: dict[str, Any], existing_root: str, rebuilt_root: str) -> list[OutputDifference]:
    """Every locked output checked in the rebuild and in the existing copy."""
    differences = []
    locked = {e["uri"]: e["sha256"] for e in lock["outputs"]}
    # Each rebuilt file under the name the lock gives it (an older release may name some differently).
    as_locked = locked_name(lock)
    rebuilt_names = {as_locked(rel): rel for rel in output_files(rebuilt_root)}
    for rel in sorted(set(locked) | set(rebuilt_names)):
        rebuilt = _sha256_or_none(storage.join(rebuilt_root, rebuilt_names.get(rel, rel)))
        existing = _sha256_or_none(storage.join(existing_root, rel))
        if rebuilt == locked.get(rel) == existing:
            continue
        document = None
        if rel.startswith("shards/") and rebuilt != existing:
            document = first_differing_document(
                storage.join(existing_root, rel), storage.join(rebuilt_root, rel)
            )
        differences.append(OutputDifference(rel, locked.get(rel), existing, rebuilt, document))
    return differences


@contextmanager
def cache_set_aside(cache: str) -> Iterator[None]:
    """Rebuild with an empty cache, so nothing a previous run computed is reused; the shared cache (other
    releases use it too) is put back afterwards, and the rebuild's own cache is discarded."""
    aside = cache + PREVIOUS_SUFFIX
    if os.path.exists(aside):
        raise InputError(f"{aside} exists (an interrupted regenerate's cache): restore it to {cache} first")
    had_cache = os.path.exists(cache)
    if had_cache:
        os.rename(cache, aside)
    try:
        yield
    finally:
        if os.path.exists(cache):
            shutil.rmtree(cache)
        if had_cache:
            os.rename(aside, cache)


def regenerate(
    lock_path: str,
    beam_args: list[str],
    verify: bool = True,
    keep_previous: bool = False,
    log: Callable[[str], None] = print,
    into: str | None = None,
    moves: Moves = (),
) -> RegenerateReport:
    """Check the release folder and inputs against the lock, rebuild the release (in place for a local one,
    under the output path `into` or, on S3, `<output.path>/_regenerate` otherwise) and (with `verify`)
    compare every file. Inputs in a folder that moved are read where `moves` (recorded folder, now) say."""
    lock = read_lock(lock_path)
    root = release_root(lock_path)
    check_release_folder(lock, root)
    check_output_uris(lock, root)
    _check_moves(lock, moves)
    if into is None and not storage.is_s3(root):
        return _rebuild_in_place(lock, root, beam_args, verify, keep_previous, log, moves)
    into = storage.join(output_path_of(root), REBUILD_DIR) if into is None else _resolved(into)
    return _rebuild_beside(lock, root, into, beam_args, verify, keep_previous, log, moves)


def _resolved(path: str) -> str:
    return path.rstrip("/") if storage.is_s3(path) else os.path.abspath(path)


def _check_moves(lock: dict[str, Any], moves: Moves) -> None:
    names = [entry["uri"] for entry in _locked_files(lock)]
    unused = unused_moves(names, moves)
    if unused:
        old, new = unused[0]
        raise InputError(
            f"--input-root {old}={new}: the lock names no file under {old}; give OLD as the lock names a folder of "
            f"its inputs (such as {_top_folder(names[0])}), or `.` for the manifest's folder itself"
        )


def _check_inputs(lock: dict[str, Any], root: str, moves: Moves) -> None:
    drifts = drifted_files(lock, root, moves)
    missing = [d for d in drifts if d.location is not None]
    if missing:
        first = missing[0]
        more = f" (and {len(missing) - 1} more locked files)" if len(missing) > 1 else ""
        raise InputDriftError(
            f"{first.uri}: missing, looked for at {first.location}{more}; if the inputs moved, say where with "
            f"--input-root OLD=NEW (OLD a folder as the lock names it, such as {_top_folder(first.uri)}, or `.` for the "
            "manifest's folder itself; NEW where it is now)"
        )
    if drifts:
        raise InputDriftError(
            f"{len(drifts)} locked files drifted, so the release cannot be rebuilt:\n"
            + "\n".join(f"  {d}" for d in drifts)
        )


def _top_folder(name: str) -> str:
    """The first folder of a recorded path past its leading `..` parts: the folder a user most likely moved."""
    if storage.is_s3(name):
        return name.rsplit("/", 1)[0]
    parts = Path(name).parts
    climbs = sum(1 for _ in itertools.takewhile(lambda part: part == "..", parts))
    return str(Path(*parts[: climbs + 1])) if len(parts) > climbs + 1 else "."


def _rebuild_in_place(
    lock: dict[str, Any], root: str, beam_args: list[str], verify: bool, keep_previous: bool, log, moves: Moves
) -> RegenerateReport:
    """Move the local release aside and rebuild it where it was, with the shared cache set aside."""
    from curation.pipeline import prepare, run_locked

    loaded = locked_manifest(lock, root, output_path_of(root), moves)
    _check_inputs(lock, root, moves)
    layout = RunLayout.from_root(root)
    # Held before anything moves, not only while rebuilding: a run on this output would lose its cache.
    with run_lock.held(layout.run_lock_file, loaded.manifest.name, loaded.manifest.version, log):
        previous = root + PREVIOUS_SUFFIX
        if os.path.exists(previous):
            raise InputError(
                f"{previous} exists (an earlier regenerate's old output): remove or restore it first"
            )
        os.rename(root, previous)
        carry_claim(previous, layout)
        log(f"[regenerate] inputs match the lock; old output moved to {previous}; rebuilding {root}")
        with cache_set_aside(layout.cache):
            run_locked(prepare(loaded, beam_args, log))
    differences = compare_outputs(lock, previous, root) if verify else []
    changes = library_changes(lock, read_lock(os.path.join(root, "lock.json")))
    if verify and not differences and not keep_previous:
        shutil.rmtree(previous)
        previous = None
    return RegenerateReport(root, previous, differences, changes)


def _rebuild_beside(
    lock: dict[str, Any], root: str, into: str, beam_args: list[str], verify: bool, keep_previous: bool, log, moves: Moves
) -> RegenerateReport:
    """Rebuild under the empty output path `into` (so with an empty cache of its own), never touching the
    release; the rebuild is removed once verified identical, unless `keep_previous`, and kept otherwise."""
    from curation.pipeline import run

    if (into + "/").startswith(root + "/"):
        raise InputError(f"{into}: inside the release {root}; give --into a place outside it")
    # An output path holding anything (the release's own, an earlier rebuild) could lend its cache or lose files.
    if _holds_anything(into):
        raise InputError(
            f"{into}: not empty (an earlier rebuild?); regenerate rebuilds into an empty place, so remove it "
            "or give another --into"
        )
    loaded = locked_manifest(lock, root, into, moves)
    _check_inputs(lock, root, moves)
    layout = RunLayout.for_manifest(into, lock["name"], lock["version"])
    carry_claim(root, layout)
    log(f"[regenerate] inputs match the lock; rebuilding {root} into {layout.root}, leaving the release as it is")
    run(loaded, beam_args, log)
    differences = compare_outputs(lock, root, layout.root) if verify else []
    changes = library_changes(lock, read_lock(layout.lock_file))
    rebuilt: str | None = layout.root
    if verify and not differences and not keep_previous:
        storage.remove_tree(into)
        rebuilt = None
    return RegenerateReport(root, None, differences, changes, rebuilt)


def _holds_anything(path: str) -> bool:
    try:
        storage.list_files(storage.join(path, "**"))
    except InputError:
        return False
    return True


def format_report(report: RegenerateReport, verified: bool) -> str:
    lines = []
    if report.library_changes:
        lines.append("environment differs from the lock: " + "; ".join(report.library_changes))
    if not verified:
        lines.append(f"rebuilt {report.root} (not verified)")
    elif report.identical:
        lines.append(f"verified: every output of {report.root} is byte-identical to the lock")
    else:
        lines.append(f"{len(report.differences)} output files differ; first: {report.differences[0]}")
        lines.extend(f"  {d}" for d in report.differences[1:])
    if report.previous:
        lines.append(f"old output kept at {report.previous}")
    if report.rebuilt:
        lines.append(f"rebuild kept at {report.rebuilt}; the release at {report.root} is unchanged")
    return "\n".join(lines)
