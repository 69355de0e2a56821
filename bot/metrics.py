"""Prometheus metrics for one process: its own registry, rendered at GET /metrics."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from storage import WatchStatus


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.polls = Counter(
            "syncwatch_polls",
            "Vendor polls by vendor and outcome",
            ["vendor", "outcome"],
            registry=self.registry,
        )
        self._poll_children: dict[tuple[str, str], Any] = {}
        self.slack_calls = Counter(
            "syncwatch_slack_deliveries",
            "Outbox deliveries to Slack by kind and outcome",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.last_inbound = Gauge(
            "syncwatch_last_inbound_request_timestamp_seconds",
            "When the last request from Slack arrived (a quiet Socket Mode link shows here)",
            registry=self.registry,
        )

    def name_replica(self, replica: str) -> None:
        """Which process these figures come from, as an info metric: with several replicas
        behind one scrape config, their series can be told apart and joined on it."""
        info = Info("syncwatch_replica", "This process as a replica", registry=self.registry)
        info.info({"replica": replica})

    def count_poll(self, vendor: str, outcome: str) -> None:
        """One vendor poll and how it went. The labelled child is looked up once per pair:
        `labels()` takes a lock and builds a key, on every poll (thousands a minute)."""
        child = self._poll_children.get((vendor, outcome))
        if child is None:
            child = self._poll_children.setdefault(
                (vendor, outcome), self.polls.labels(vendor, outcome)
            )
        child.inc()

    def watch_store(self, read: Callable[[], tuple[dict[str, int], int, float]]) -> None:
        """Report watch counts and outbox backlog from the database at scrape time."""
        self.registry.register(_StoreCollector(read))

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _StoreCollector(Collector):
    def __init__(self, read: Callable[[], tuple[dict[str, int], int, float]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        by_status, backlog, age = self.read()
        watches = GaugeMetricFamily("syncwatch_watches", "Watches by status", labels=["status"])
        for status in WatchStatus:
            watches.add_metric([status], by_status.get(status, 0))
        yield watches
        yield GaugeMetricFamily("syncwatch_outbox_backlog", "Unsent outbox rows", value=backlog)
        yield GaugeMetricFamily(
            "syncwatch_outbox_oldest_age_seconds", "Age of the oldest unsent row", value=age
        )
