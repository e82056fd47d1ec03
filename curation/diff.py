"""What changed between two releases (or two manifests): configuration changes as field paths, and per source
the documents and tokens added and removed, read from the shard indexes (cf. `git diff` for data, as in
Dolma's and DataComp's release notes, made exact)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pyarrow.parquet as pq

from curation import storage
from curation.errors import InputError
from curation.layout import RunLayout
from curation.released import load_manifest_copy
from mixes.manifest import load_manifest

ABSENT = object()


@dataclass(frozen=True)
class Side:
    """One thing being compared: its manifest (as written) and its output folder, when one exists."""

    label: str
    raw: dict[str, Any]
    root: str | None


@dataclass(frozen=True)
class ConfigChange:
    path: str
    before: Any
    after: Any

    def __str__(self) -> str:
        if self.before is ABSENT:
            return f"+ {self.path}: {self.after!r}"
        if self.after is ABSENT:
            return f"- {self.path}: {self.before!r}"
        return f"~ {self.path}: {self.before!r} -> {self.after!r}"


@dataclass(frozen=True)
class SourceChange:
    source: str
    documents_before: int
    documents_after: int
    tokens_before: int
    tokens_after: int
    documents_added: int
    documents_removed: int
    tokens_added: int
    tokens_removed: int
    # same id in both, different tokens in the mix (edited text or another repetition count)
    documents_changed: int


def open_side(path: str) -> Side:
    """A manifest file (its output used when it has been run) or an output folder, local or on S3 (its
    manifest copy)."""
    if storage.is_s3(path):
        return Side(path, load_manifest_copy(path).raw, path.rstrip("/"))
    if os.path.isdir(path):
        copy = os.path.join(path, "manifest.yaml")
        if not os.path.exists(copy):
            raise InputError(f"{path}: not an output folder (no manifest.yaml); give a manifest or an output")
        return Side(path, load_manifest(copy).raw, path)
    loaded = load_manifest(path)
    m = loaded.manifest
    root = RunLayout.for_manifest(loaded.output_folder, m.name, m.version).root
    return Side(path, loaded.raw, root if storage.exists(storage.join(root, "stats.json")) else None)


def _item_name(item: Any, index: int) -> str:
    """Sources and benchmarks are named, filters by `use`: paths survive reordering and insertion."""
    if isinstance(item, dict):
        for key in ("name", "use"):
            if isinstance(item.get(key), str):
                return item[key]
    return str(index)


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Leaf values by field path: `sources[web].filters[gopher_quality].min_words`; scalar lists are leaves."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, v in value.items():
            out.update(flatten(v, f"{prefix}.{key}" if prefix else str(key)))
        return out or {prefix: {}}
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        out = {}
        seen: dict[str, int] = {}
        for i, item in enumerate(value):
            name = _item_name(item, i)
            seen[name] = seen.get(name, 0) + 1
            label = name if seen[name] == 1 else f"{name}#{seen[name]}"
            out.update(flatten(item, f"{prefix}[{label}]"))
        return out
    return {prefix: value}


def config_changes(before: dict[str, Any], after: dict[str, Any]) -> list[ConfigChange]:
    a, b = flatten(before), flatten(after)
    return [
        ConfigChange(p, a.get(p, ABSENT), b.get(p, ABSENT))
        for p in sorted(set(a) | set(b))
        if a.get(p, ABSENT) != b.get(p, ABSENT)
    ]


def mixed_tokens(root: str) -> dict[str, dict[str, int]]:
    """Per source, each document id in the mix and its tokens there (all repetitions)."""
    found: dict[str, dict[str, int]] = {}
    try:
        files = storage.list_files(storage.join(root, "shards", "part-*.index"))
    except InputError:
        return found
    for uri in files:
        with storage.open_seekable(uri) as f:
            table = pq.read_table(f, columns=["start", "end", "doc_id", "source"]).to_pydict()
        for start, end, doc_id, source in zip(table["start"], table["end"], table["doc_id"], table["source"]):
            docs = found.setdefault(source, {})
            docs[doc_id] = docs.get(doc_id, 0) + end - start
    return found


def source_changes(before_root: str, after_root: str) -> list[SourceChange]:
    before, after = mixed_tokens(before_root), mixed_tokens(after_root)
    changes = []
    for source in sorted(set(before) | set(after)):
        a, b = before.get(source, {}), after.get(source, {})
        added, removed = b.keys() - a.keys(), a.keys() - b.keys()
        changes.append(
            SourceChange(
                source,
                len(a),
                len(b),
                sum(a.values()),
                sum(b.values()),
                len(added),
                len(removed),
                sum(b[i] for i in added),
                sum(a[i] for i in removed),
                sum(1 for i in a.keys() & b.keys() if a[i] != b[i]),
            )
        )
    return changes


def format_diff(a: Side, b: Side, changes: list[ConfigChange], sources: list[SourceChange] | None) -> str:
    lines = [f"--- {a.label}", f"+++ {b.label}", f"config: {len(changes)} field changes"]
    lines += [f"  {c}" for c in changes]
    if sources is None:
        missing = " and ".join(s.label for s in (a, b) if s.root is None)
        lines.append(f"documents: not compared ({missing} has no finished output)")
        return "\n".join(lines)
    header = f"{'source':<14}{'docs A':>10}{'docs B':>10}{'added':>9}{'removed':>9}{'changed':>9}{'tokens A':>13}{'tokens B':>13}{'tok added':>12}{'tok removed':>13}"
    lines += ["documents and tokens in the mix:", header, "-" * len(header)]
    for s in sources:
        lines.append(
            f"{s.source:<14}{s.documents_before:>10,}{s.documents_after:>10,}{s.documents_added:>9,}{s.documents_removed:>9,}"
            f"{s.documents_changed:>9,}{s.tokens_before:>13,}{s.tokens_after:>13,}{s.tokens_added:>12,}{s.tokens_removed:>13,}"
        )
    return "\n".join(lines)


def diff(a_path: str, b_path: str) -> str:
    a, b = open_side(a_path), open_side(b_path)
    sources = source_changes(a.root, b.root) if a.root and b.root else None
    return format_diff(a, b, config_changes(a.raw, b.raw), sources)
