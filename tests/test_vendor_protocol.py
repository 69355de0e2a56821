"""The vendor protocol the poller relies on: each spec builds a client of its own kind,
clients declare what the poller reads (`kind`, `min_interval`), connections are typed at the
family boundary, and vendor modules keep no mutable state of their own."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace

import httpx
import pytest

import bot.vendors
from bot.config import Settings
from bot.vendors import SPECS, SeenKeys, VendorContext, build_http_client, connection_of
from bot.vendors.micro import MicroConnection
from bot.vendors.pool import VendorPool
from bot.vendors.zoho_analytics import SPEC as ZA
from bot.vendors.zoho_analytics_sync import SPEC as ZA_SYNC
from bot.vendors.zoho_auth import ZohoConnection
from bot.vendors.zuora import SPEC as ZUORA_SPEC

LOCK = type(threading.Lock())


@pytest.fixture(autouse=True)
def no_config_file_in_cwd(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


ALL_ENV = {
    "ZOHO_CLIENT_ID": "1000.PROTOCOLCLIENT",
    "ZOHO_CLIENT_SECRET": "protocol-zoho-SECRET",
    "ZOHO_REFRESH_TOKEN": "1000.protocol-refresh",
    "ZOHO_ANALYTICS_ORG_ID": "20001",
    "ZUORA_CLIENT_ID": "protocol-zuora-client",
    "ZUORA_CLIENT_SECRET": "protocol-zuora-SECRET",
    "ZUORA_BASE_URL": "http://127.0.0.1:9004",
    "MICRO_API_KEY": "protocol-micro-KEY",
    "MICRO_TEAM_ID": "3b9e6f0a-2c4d-4e8b-9a71-5d0c2e8f1a64",
}


def refuse(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"no request expected, got {request.url}")


@pytest.fixture
def make_pool() -> Iterator[Callable[[Mapping[str, str]], VendorPool]]:
    """Pools over `env` (ALL_ENV by default) whose vendors may send no request; all closed."""
    made: list[VendorPool] = []

    def make(env: Mapping[str, str] = ALL_ENV) -> VendorPool:
        http = build_http_client(httpx.MockTransport(refuse))
        made.append(
            VendorPool(Settings.from_env(env).connections, VendorContext(http, lambda: 0.0))
        )
        return made[-1]

    yield make
    for pool in made:
        pool.close()


def test_each_spec_builds_a_client_of_its_own_kind(make_pool) -> None:
    pool = make_pool()
    for spec in SPECS.values():
        client = pool.get(spec, "default")
        assert client.kind == spec.kind
        assert pool.get(spec, "default") is client  # built once
        assert client.min_interval is None or client.min_interval > 0
        assert callable(client.fetch) and callable(client.results)
        if client.kind == "sync":
            assert callable(client.trigger)
    assert {s.kind for s in SPECS.values()} == {"job", "sync"}


def test_pool_refuses_a_spec_whose_client_is_of_another_kind(make_pool) -> None:
    with pytest.raises(TypeError, match="builds sync clients, not job"):
        make_pool().get(replace(ZA_SYNC, key="mislabelled", kind="job"), "default")


def test_a_spec_given_another_familys_connection_says_so(make_pool) -> None:
    micro = MicroConnection(name="m", api_key="k", team_id="")
    with pytest.raises(TypeError, match="MicroConnection given where a ZohoConnection"):
        ZA.build(micro, make_pool().ctx)
    assert connection_of(micro, MicroConnection) is micro
    with pytest.raises(TypeError):
        connection_of(micro, ZohoConnection)


def test_zuora_sandbox_min_interval_is_declared_by_the_client(make_pool) -> None:
    env = {**ALL_ENV, "ZUORA_BASE_URL": "", "ZUORA_ENV": "us-sandbox"}
    assert make_pool(env).get(ZUORA_SPEC, "default").min_interval == 30.0
    assert make_pool().get(ZUORA_SPEC, "default").min_interval is None


def test_what_was_logged_once_belongs_to_the_context_not_the_module(make_pool) -> None:
    seen = SeenKeys()
    assert seen.first(("micro", "paused")) and not seen.first(("micro", "paused"))
    assert SeenKeys().first(("micro", "paused"))  # another pool's context starts afresh
    assert make_pool().ctx.seen is not make_pool().ctx.seen


def test_vendor_modules_hold_no_mutable_module_state() -> None:
    """Caches, tallies and seen-sets live in instances the pool owns (its VendorContext)."""
    found = []
    for info in pkgutil.iter_modules(bot.vendors.__path__):
        module = importlib.import_module(f"bot.vendors.{info.name}")
        for name, value in vars(module).items():
            if name.startswith("__") or isinstance(value, logging.Logger):
                continue
            if isinstance(value, set | list | bytearray) or isinstance(value, LOCK):
                found.append(f"{info.name}.{name}")
    assert found == []
    with pytest.raises(TypeError):
        SPECS["nope"] = ZA
