"""A filter package outside curation, for the plugin test: drops pages written mostly in capitals."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar


@dataclass(frozen=True)
class ShoutingConfig:
    max_uppercase_fraction: float | None = 0.5


class ShoutingFilter:
    name: ClassVar[str] = "shouting_v1"
    Config = ShoutingConfig

    def __init__(self, config: ShoutingConfig):
        self.config = config

    def setup(self) -> None:
        pass

    def score(self, view) -> dict[str, float]:
        letters = [c for c in view.text if c.isalpha()]
        return {"uppercase_fraction": sum(c.isupper() for c in letters) / len(letters) if letters else 0.0}

    def reject_reason(self, scores: dict[str, float]) -> str | None:
        limit = self.config.max_uppercase_fraction
        return "shouting" if limit is not None and scores["uppercase_fraction"] > limit else None
