"""Typed loading of plain mappings (YAML) into frozen dataclasses, with errors that name the field.

One loader serves the manifest and every filter's config, so validation is written once: unknown keys
are refused with close matches, types are checked, and nested dataclasses, lists, dicts, Literals and
unions (`int | None`) are followed. YAML files are read through `read_yaml`, which bounds what aliases
may expand to before anything walks the data.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from curation import storage
from curation.errors import InputError, ManifestError

T = TypeVar("T")

# Names of manifests, sources, eval suites and benchmarks; matched whole (`fullmatch`), so no trailing newline.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
# Semantic versions: MAJOR.MINOR.PATCH with an optional pre-release or build suffix.
VERSION_PATTERN = re.compile(r"\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?")

# Nodes that YAML aliases may add to a file beyond its own: plenty for a shared filter list, far too few for
# a "billion laughs" file, whose few hundred bytes expand to 10^9 nodes once anything walks the loaded data.
MAX_ALIAS_NODES = 10_000


class ConfigError(ValueError):
    """A config value is wrong; `path` is the dotted field path (`sources[1].filters[0].min_words`)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


def close_matches(word: str, choices: typing.Iterable[str]) -> str:
    """A hint naming the closest choices: the best match and any nearly as close."""
    scored = sorted(((difflib.SequenceMatcher(None, word, c).ratio(), c) for c in choices), reverse=True)
    best = scored[0][0] if scored else 0.0
    matches = [c for ratio, c in scored[:3] if ratio >= max(0.5, best - 0.1)]
    return f" (did you mean {', '.join(repr(m) for m in matches)}?)" if matches else ""


def read_yaml(path: str | Path, kind: str) -> Any:
    """The data of a YAML `kind` file (manifest, eval-set; local or on S3), or a one-line ManifestError naming
    the file."""
    try:
        text = _read_text(str(path))
    except FileNotFoundError:
        raise ManifestError(f"{path}: {kind} file not found") from None
    except (OSError, UnicodeDecodeError, InputError) as exc:
        raise ManifestError(f"{path}: cannot read this {kind} file ({exc})") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_alias_expansion(node, path)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        # PyYAML's messages span lines; the user gets one.
        raise ManifestError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise ManifestError(f"{path}: nested too deeply to be a {kind}") from None
    finally:
        loader.dispose()


def _read_text(path: str) -> str:
    if not storage.is_s3(path):
        return Path(path).read_text(encoding="utf-8")
    with storage.open_binary(path) as f:
        return f.read().decode("utf-8")


def _check_alias_expansion(root: yaml.Node, path: str | Path) -> None:
    """Refuse aliases that expand the file past MAX_ALIAS_NODES, or that refer to a node containing them.

    Aliases share nodes, so each distinct node is sized once as its expanded tree (a depth-first walk
    without recursion): linear in the file, whatever it expands to.
    """
    expanded: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_sized = stack.pop()
        key = id(node)
        if children_sized:
            open_nodes.discard(key)
            expanded[key] = 1 + sum(expanded[id(child)] for child in _children(node))
        elif key in open_nodes:
            raise ManifestError(f"{path}: a YAML alias refers to a node that contains it; write the value out")
        elif key not in expanded:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in _children(node))
    added = expanded[id(root)] - len(expanded)
    if added > MAX_ALIAS_NODES:
        raise ManifestError(
            f"{path}: YAML aliases expand this file by {added:,} nodes, more than the {MAX_ALIAS_NODES:,} "
            "allowed; write repeated values out or use fewer aliases"
        )


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [child for pair in node.value for child in pair]
    if isinstance(node, yaml.SequenceNode):
        return node.value
    return []


def from_mapping(cls: type[T], data: Any, path: str = "") -> T:
    """Build dataclass `cls` from `data`, checking keys and types recursively."""
    if not isinstance(data, dict):
        raise ConfigError(path, f"expected a mapping for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        key = unknown[0]
        raise ConfigError(
            join_path(path, str(key)), f"unknown field{close_matches(str(key), fields)}; allowed: {', '.join(fields)}"
        )
    kwargs = {}
    for name, f in fields.items():
        sub = join_path(path, name)
        if name in data:
            kwargs[name] = convert(hints[name], data[name], sub)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(sub, "required field is missing")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(path, str(exc)) from None


def join_path(path: str, name: str) -> str:
    """The dotted field path of `name` under `path` (`sources[0]` + `paths` -> `sources[0].paths`)."""
    return f"{path}.{name}" if path else name


def convert(tp: Any, value: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        options = get_args(tp)
        if value is None and type(None) in options:
            return None
        options = tuple(opt for opt in options if opt is not type(None))
        if len(options) == 1:
            # `X | None`: X's own error, which names the field inside X that is wrong.
            return convert(options[0], value, path)
        errors = []
        for opt in options:
            try:
                return convert(opt, value, path)
            except ConfigError as exc:
                errors.append(exc.message)
        raise ConfigError(path, " or ".join(errors))
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ConfigError(
                path, f"{value!r} is not one of {list(allowed)}{close_matches(str(value), map(str, allowed))}"
            )
        return value
    if dataclasses.is_dataclass(tp):
        return from_mapping(tp, value, path)
    if origin in (list, tuple) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(path, f"expected a list, got {type(value).__name__}")
        args = get_args(tp)
        item_tp = args[0] if args else Any
        items = [convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if (origin is tuple or tp is tuple) else items
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(path, f"expected a mapping, got {type(value).__name__}")
        args = get_args(tp)
        key_tp, val_tp = args if args else (Any, Any)
        return {convert(key_tp, k, path): convert(val_tp, v, join_path(path, str(k))) for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(path, f"expected a number, got {value!r}")
        # NaN passes every range check (`nan < 1` and `nan > 1` are both false), so it is refused here once.
        if not math.isfinite(value):
            raise ConfigError(path, f"expected a finite number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(path, f"expected a whole number, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(path, f"expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(path, f"expected text, got {value!r}")
        return value
    raise ConfigError(path, f"unsupported type {tp!r}")
