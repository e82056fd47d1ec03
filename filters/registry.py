"""The explicit table of filters a manifest can name (`use:`), and building them from specs.

An explicit mapping in one module, not a decorator registry filled by imports (see CONVENTIONS.md),
plus the filters installed packages register (`filters/plugins.py`). Each filter class has a frozen
`Config` dataclass; its fields are the manifest keys beside `use`.
"""

from __future__ import annotations

from typing import Any

from curation.config import ConfigError, close_matches, from_mapping
from filters.c4 import C4LineRemoval, C4QualityFilter
from filters.c4_badwords import C4BadWordsFilter
from filters.code_quality import CodeQualityFilter
from filters.fineweb import FineWebQualityFilter
from filters.gopher_quality import GopherQualityFilter
from filters.gopher_repetition import GopherRepetitionFilter
from filters.language import LanguageFilter
from filters.normalize_text import NormalizeText
from filters.pii import PIIMask
from filters.plugins import Plugin, PluginError, find_plugin, plugin_names
from filters.quality_classifier import QualityClassifierFilter
from filters.url_blocklist import URLBlocklistFilter

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
        # Issue #14's families, in its order.
        URLBlocklistFilter,
        PIIMask,
        C4BadWordsFilter,
        CodeQualityFilter,
        NormalizeText,
    )
}


# Keys of a filter spec that belong to the chain, not to the filter's config.
CHAIN_KEYS = ("use", "gate")
# Keys of a filter spec that name a model file (resolved against the manifest's folder).
MODEL_KEYS = ("model", "model_path")
# Keys that name list files (a `_dir` key: a folder of lists), resolved likewise and recorded in the lock.
LIST_KEYS = (
    "domains_file",
    "urls_file",
    "banned_words_file",
    "banned_subwords_file",
    "soft_banned_words_file",
    "words_dir",
)
FILE_KEYS = MODEL_KEYS + LIST_KEYS


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
    cls = filter_class(spec["use"], f"{path}.use")
    params = {k: v for k, v in spec.items() if k not in CHAIN_KEYS}
    return cls(from_mapping(cls.Config, params, path))


def filter_class(use: Any, path: str) -> type:
    """The built-in filter named `use`, else the one an installed package registers under that name."""
    if not isinstance(use, str):
        raise ConfigError(path, f"expected a filter name, got {use!r}")
    if use in FILTERS:
        return FILTERS[use]
    plugin = _plugin(use, path)
    if plugin is None:
        known = sorted(FILTERS) + plugin_names()
        raise ConfigError(path, f"unknown filter {use!r}{close_matches(str(use), known)}; known: {', '.join(known)}")
    return plugin.cls


def plugin_of(use: str) -> Plugin | None:
    """The installed package a filter name comes from; None for a built-in."""
    return None if use in FILTERS else _plugin(use, "use")


def _plugin(use: str, path: str) -> Plugin | None:
    try:
        return find_plugin(use)
    except PluginError as exc:
        raise ConfigError(path, str(exc)) from None


def build_chain(specs: list[dict[str, Any]]) -> list:
    return [build_filter(s, f"filters[{i}]") for i, s in enumerate(specs)]
