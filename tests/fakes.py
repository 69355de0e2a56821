"""Test doubles shared by several test modules: a fake clock and Zoho connection values."""

from __future__ import annotations

import threading
import time
from typing import Any

from bot.vendors.zoho_auth import ZohoConnection

ZOHO_CLIENT_ID = "test-client-id"
ZOHO_CLIENT_SECRET = "test-client-secret"
ZOHO_REFRESH_TOKEN = "test-refresh-token"
ZOHO_ACCOUNTS = "https://accounts.zoho.test"
ZOHO_ANALYTICS = "https://analytics.zoho.test"


class FakeClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01 00:00 UTC
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


class SkippingClock:
    """Real epoch seconds that a test can move forward. The bot's threads run as usual, and
    what it waits for on this clock (backoff, vendor budgets, Slack's Retry-After) comes as
    soon as the test skips ahead, instead of after that much real time."""

    def __init__(self) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return time.time() + self._offset

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._offset += seconds


def zoho_connection(**overrides: Any) -> ZohoConnection:
    """A Zoho connection on the reserved .test domain (a missed transport fails on DNS)."""
    values: dict[str, Any] = {
        "name": "default",
        "client_id": ZOHO_CLIENT_ID,
        "client_secret": ZOHO_CLIENT_SECRET,
        "refresh_token": ZOHO_REFRESH_TOKEN,
        "dc": "us",
        "analytics_org_id": "55522777",
        "accounts_url": ZOHO_ACCOUNTS,
        "analytics_api_url": ZOHO_ANALYTICS,
        "crm_api_url": "https://crm.zoho.test",
    }
    return ZohoConnection(**(values | overrides))
