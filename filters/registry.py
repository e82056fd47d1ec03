"""The explicit table of filters a manifest can name (`use:`), and building them from specs.

An explicit mapping in one module, not a decorator registry filled by imports (see CONVENTIONS.md).
Each filter class has a frozen `Config` dataclass; its fields are the manifest keys beside `use`.
"""

from __future__ import annotations

from typing import Any

from curation.config import ConfigError, close_matches, from_mapping
from filters.c4 import C4LineRemoval, C4QualityFilter
from filters.fineweb import FineWebQualityFilter
from filters.gopher_quality import GopherQualityFilter
from filters.gopher_repetition import GopherRepetitionFilter
from filters.language import LanguageFilter
from filters.quality_classifier import QualityClassifierFilter

# Versioned name used in manifests (`use: gopher_quality_v1`) -> filter or modifier class (each with a
# nested frozen `Config`). A manifest names the version, so a new version never changes an old manifest.
FILTERS: dict[str, type] = {
    cls.name: cls
    for cls in (
        LanguageFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        C4QualityFilter,
        C4LineRemoval,
        FineWebQualityFilter,
        QualityClassifierFilter,
    )
}


# Keys of a filter spec that belong to the chain, not to the filter's config.
CHAIN_KEYS = ("use", "gate")
# Keys of a filter spec that name a model file (resolved against the manifest's folder).
MODEL_KEYS = ("model", "model_path")


def validate_filter_spec(spec: Any, path: str) -> None:
    step = build_filter(spec, path)
    gate = spec.get("gate", False)
    if not isinstance(gate, bool):
        raise ConfigError(f"{path}.gate", f"expected true or false, got {gate!r}")
    if gate and not hasattr(step, "reject_reason"):
        raise ConfigError(f"{path}.gate", f"{step.name} rewrites text and rejects nothing, so it cannot gate")


def build_filter(spec: Any, path: str = "filter"):
    if not isinstance(spec, dict) or "use" not in spec:
        raise ConfigError(path, "a filter is a mapping with a 'use' key naming it")
    use = spec["use"]
    cls = FILTERS.get(use)
    if cls is None:
        raise ConfigError(
            f"{path}.use",
            f"unknown filter {use!r}{close_matches(str(use), FILTERS)}; known: {', '.join(sorted(FILTERS))}",
        )
    params = {k: v for k, v in spec.items() if k not in CHAIN_KEYS}
    return cls(from_mapping(cls.Config, params, path))


def build_chain(specs: list[dict[str, Any]]) -> list:
    return [build_filter(s, f"filters[{i}]") for i, s in enumerate(specs)]
