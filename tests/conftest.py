"""Shared fixtures: a fake clock, a file-backed store, the local Slack and Zoho fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.simulators.slack import FakeSlackAPI
from bot.simulators.zoho import ZohoSimulator
from storage import Store


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01 00:00 UTC
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path) -> Iterator[Store]:
    s = Store(str(tmp_path / "syncwatch.db"))
    yield s
    s.close()


@pytest.fixture
def fake_slack() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as fake:
        yield fake


@pytest.fixture
def zoho_sim() -> Iterator[ZohoSimulator]:
    with ZohoSimulator() as sim:
        yield sim
