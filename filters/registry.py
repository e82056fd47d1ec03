"""The explicit table of filters a manifest can name (`use:`), and building them from specs.

An explicit mapping in one module, not a decorator registry filled by imports (see CONVENTIONS.md).
Each filter class has a frozen `Config` dataclass; its fields are the manifest keys beside `use`.
"""

from __future__ import annotations

from typing import Any

from curation.config import ConfigError, close_matches, from_mapping

# name used in manifests -> filter or modifier class (each with a nested frozen `Config`).
FILTERS: dict[str, type] = {}


def validate_filter_spec(spec: Any, path: str) -> None:
    build_filter(spec, path)


def build_filter(spec: Any, path: str = "filter"):
    if not isinstance(spec, dict) or "use" not in spec:
        raise ConfigError(path, "a filter is a mapping with a 'use' key naming it")
    use = spec["use"]
    cls = FILTERS.get(use)
    if cls is None:
        raise ConfigError(f"{path}.use", f"unknown filter {use!r}{close_matches(str(use), FILTERS)}; known: {', '.join(sorted(FILTERS))}")
    params = {k: v for k, v in spec.items() if k != "use"}
    return cls(from_mapping(cls.Config, params, path))


def build_chain(specs: list[dict[str, Any]]) -> list:
    return [build_filter(s, f"filters[{i}]") for i, s in enumerate(specs)]
