"""Micro Prism async imports: poll within Micro's small per-key monthly request budget."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_BASE_URL = "https://developers.micro.so"  # vendors.md §7.1: always set explicitly


@dataclass(frozen=True)
class MicroConnection:
    """One Micro API key as configured. `base_url` is an origin; `team_id` (a UUID) is the
    team used when a job ref names none. `overridden` is True when MICRO_BASE_URL was set."""

    name: str
    api_key: str
    team_id: str
    base_url: str = DEFAULT_BASE_URL
    overridden: bool = False

    def __repr__(self) -> str:  # never let a secret reach a log line through repr()
        return f"MicroConnection(name={self.name!r}, base_url={self.base_url!r})"
