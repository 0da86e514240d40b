"""Prometheus metrics and the ``/healthz`` endpoint.

Counters and histograms are module-level (the prometheus-client idiom) on a registry
of our own; gauges that describe the store are read from it at scrape time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifier.httpserver import LocalHTTPServer, QuietHandler, Reply
from notifier.store import Store

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
JOB_POLLS = Counter("notifier_job_polls", "Jobs polled", registry=REGISTRY)
POLL_ERRORS = Counter(
    "notifier_poll_errors", "Polls that failed, by reason", ["reason"], registry=REGISTRY
)
GRAPHQL_REQUESTS = Counter(
    "notifier_graphql_requests",
    "GraphQL requests to Datasaur",
    ["operation", "outcome"],
    registry=REGISTRY,
)
GRAPHQL_LATENCY = Histogram(
    "notifier_graphql_request_seconds",
    "GraphQL request latency",
    ["operation"],
    registry=REGISTRY,
)
DELIVERY_ATTEMPTS = Counter(
    "notifier_delivery_attempts", "Delivery attempts", ["callback", "outcome"], registry=REGISTRY
)
DELIVERIES = Counter(
    "notifier_deliveries",
    "Deliveries finished, by callback and final state",
    ["callback", "state"],
    registry=REGISTRY,
)
NOTIFICATION_LATENCY = Histogram(
    "notifier_notification_latency_seconds",
    "From the status being observed to the notification being delivered",
    ["callback"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600),
    registry=REGISTRY,
)


class StoreCollector(Collector):
    """Jobs by state, outbox backlog and the age of the oldest pending delivery."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        counts = self.store.counts()
        jobs = GaugeMetricFamily("notifier_jobs", "Watched jobs by state", labels=["state"])
        for state in ("watching", "done", "expired", "unwatched"):
            jobs.add_metric([state], counts["jobs"].get(state, 0))
        yield jobs
        deliveries = GaugeMetricFamily("notifier_outbox", "Outbox rows by state", labels=["state"])
        for state in ("pending", "delivered", "dead"):
            deliveries.add_metric([state], counts["deliveries"].get(state, 0))
        yield deliveries
        oldest = self.store.oldest_pending()
        yield GaugeMetricFamily(
            "notifier_outbox_oldest_pending_seconds",
            "Age of the oldest pending delivery",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest),
        )


class Health:
    """The scheduler is healthy while its ticks keep coming."""

    def __init__(self, stall_after: float) -> None:
        self.stall_after = stall_after
        self.last_tick = time.monotonic()

    def ticked(self) -> None:
        """Called at the end of every tick."""
        self.last_tick = time.monotonic()

    def healthy(self) -> bool:
        """Whether a tick happened recently."""
        return time.monotonic() - self.last_tick <= self.stall_after


class _MetricsHandler(QuietHandler):
    owner: MetricsServer

    def do_GET(self) -> None:  # noqa: N802 - http.server names it so
        """``/metrics`` and ``/healthz``."""
        self.reply(self.owner.answer(self.path))


class MetricsServer(LocalHTTPServer):
    """Serves ``/metrics`` and ``/healthz`` on a background thread."""

    handler_class = _MetricsHandler

    def __init__(self, store: Store, health: Health, host: str, port: int) -> None:
        super().__init__(host, port)
        self.health = health
        self.store_registry = CollectorRegistry()
        self.store_registry.register(StoreCollector(store))

    def answer(self, path: str) -> Reply:
        """The reply to a GET of ``path``."""
        if path.startswith("/healthz"):
            healthy = self.health.healthy()
            text = b"ok\n" if healthy else b"scheduler stalled\n"
            return Reply(200 if healthy else 503, text, "text/plain")
        if path.startswith("/metrics"):
            body = generate_latest(REGISTRY) + generate_latest(self.store_registry)
            return Reply(200, body, CONTENT_TYPE_LATEST)
        return Reply(404, b"not found\n", "text/plain")

    def start(self) -> None:
        """Serve in the background."""
        super().start()
        log.info("metrics on %s/metrics", self.url)
