"""Filters from installed packages: a distribution declares an entry point in the `curation.filters`
group whose name is the filter's versioned name and whose object is the filter class, e.g.

    [project.entry-points."curation.filters"]
    shouting_v1 = "my_filters.shouting:ShoutingFilter"

A manifest names it like a built-in (`use: shouting_v1`). Only an installed package's entry point with
exactly that name is imported, so a manifest still cannot bring in code of its own (as Dolma's
`--tagger_modules` or a datatrove pipeline's Python class can).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from dataclasses import dataclass

ENTRY_POINT_GROUP = "curation.filters"


class PluginError(ValueError):
    """An entry point that does not give a usable filter class; the message names the distribution."""


@dataclass(frozen=True)
class Plugin:
    cls: type
    distribution: str
    version: str


def find_plugin(name: str) -> Plugin | None:
    """The installed filter registered as `name`, loaded and checked; None when no package registers it."""
    matches = [ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        return None
    distributions = sorted({_distribution(ep) for ep in matches})
    if len(distributions) > 1:
        raise PluginError(f"filter {name!r} is registered by several packages ({', '.join(distributions)}); uninstall all but one")
    ep = matches[0]
    where = f"{ep.value} (package {_distribution(ep)})"
    try:
        cls = ep.load()
    except Exception as exc:  # any import failure in third-party code is reported, in one line
        raise PluginError(f"filter {name!r}: cannot import {where}: {type(exc).__name__}: {exc}") from None
    _check_filter_class(cls, name, where)
    return Plugin(cls, ep.dist.name, ep.dist.version)


def plugin_names() -> list[str]:
    return sorted({ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)})


def _distribution(ep: importlib.metadata.EntryPoint) -> str:
    return ep.dist.name if ep.dist is not None else "unknown"


def _check_filter_class(cls: object, name: str, where: str) -> None:
    if getattr(cls, "name", None) != name:
        raise PluginError(f"{where}: its class's `name` is {getattr(cls, 'name', None)!r}, registered as {name!r}")
    config = getattr(cls, "Config", None)
    if not (isinstance(config, type) and dataclasses.is_dataclass(config) and config.__dataclass_params__.frozen):
        raise PluginError(f"{where}: a filter class needs a frozen dataclass `Config`")
    if not (callable(getattr(cls, "modify", None)) or all(callable(getattr(cls, m, None)) for m in ("score", "reject_reason"))):
        raise PluginError(f"{where}: a filter class needs `score` and `reject_reason`, or `modify`")
