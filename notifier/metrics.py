"""Prometheus metrics and the ``/healthz`` endpoint.

Counters and histograms are module-level (the prometheus-client idiom) on a registry
of our own. Collectors that read the state at scrape time are handed in by the wiring
(:mod:`notifier.daemon`), so nothing here -- nor the Datasaur client that counts its
requests here -- knows about storage.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator

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

LEASE_TAKEOVERS = Counter(
    "notifier_lease_takeovers",
    "Jobs and deliveries claimed after another instance's lease on them expired",
    ["kind"],
    registry=REGISTRY,
)
TOKEN_REFRESHES = Counter(
    "notifier_token_refreshes",
    "OAuth2 access tokens asked for, by outcome (ok, refused: bad credentials, failed)",
    ["outcome"],
    registry=REGISTRY,
)
# Every label value known up front is exported from the start (at 0), so that rules
# and dashboards see the series before the first event.
for _kind in ("job", "delivery"):
    LEASE_TAKEOVERS.labels(_kind)
for _outcome in ("ok", "refused", "failed"):
    TOKEN_REFRESHES.labels(_outcome)


class Health:
    """Healthy while the scheduler's ticks keep coming and the state store answers."""

    def __init__(self, stall_after: float) -> None:
        self.stall_after = stall_after
        self.last_tick = time.monotonic()
        self.store_error: str | None = None

    def ticked(self) -> None:
        """Called at the end of every tick."""
        self.last_tick = time.monotonic()

    def problem(self) -> str | None:
        """Why the daemon is unhealthy, or None."""
        if time.monotonic() - self.last_tick > self.stall_after:
            return "scheduler stalled"
        if self.store_error is not None:
            return "state store unavailable"
        return None

    def healthy(self) -> bool:
        """Whether a tick happened recently and the store answered last time."""
        return self.problem() is None


class HealthCollector(Collector):
    """``notifier_healthy``: what ``/healthz`` says, as a gauge."""

    def __init__(self, health: Health) -> None:
        self.health = health

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "notifier_healthy",
            "1 while /healthz answers ok (ticks keep coming, the state store answers)",
            value=1.0 if self.health.healthy() else 0.0,
        )


class _MetricsHandler(QuietHandler):
    owner: MetricsServer

    def do_GET(self) -> None:  # noqa: N802 - http.server names it so
        """``/metrics`` and ``/healthz``."""
        self.reply(self.owner.answer(self.path))


class MetricsServer(LocalHTTPServer):
    """Serves ``/metrics`` and ``/healthz`` on a background thread."""

    handler_class = _MetricsHandler

    def __init__(
        self, health: Health, host: str, port: int, collectors: Iterable[Collector] = ()
    ) -> None:
        super().__init__(host, port)
        self.health = health
        self.state_registry = CollectorRegistry()
        for collector in (HealthCollector(health), *collectors):
            self.state_registry.register(collector)

    def answer(self, path: str) -> Reply:
        """The reply to a GET of ``path``."""
        if path.startswith("/healthz"):
            problem = self.health.problem()
            text = b"ok\n" if problem is None else f"{problem}\n".encode()
            return Reply(200 if problem is None else 503, text, "text/plain")
        if path.startswith("/metrics"):
            body = generate_latest(REGISTRY) + generate_latest(self.state_registry)
            return Reply(200, body, CONTENT_TYPE_LATEST)
        return Reply(404, b"not found\n", "text/plain")

    def start(self) -> None:
        """Serve in the background."""
        super().start()
        log.info("metrics on %s/metrics", self.url)
