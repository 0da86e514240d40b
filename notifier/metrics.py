"""Prometheus metrics and the ``/healthz`` endpoint.

Counters and histograms are module-level (the prometheus-client idiom) on a registry
of our own; gauges that describe the store are read from it at scrape time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

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


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` on a background thread."""

    def __init__(self, store: Store, health: Health, host: str, port: int) -> None:
        registry = CollectorRegistry()
        registry.register(StoreCollector(store))

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/healthz"):
                    ok = health.healthy()
                    self._answer(200 if ok else 503, b"ok\n" if ok else b"scheduler stalled\n")
                elif self.path.startswith("/metrics"):
                    body = generate_latest(REGISTRY) + generate_latest(registry)
                    self._answer(200, body, "text/plain; version=0.0.4; charset=utf-8")
                else:
                    self._answer(404, b"not found\n")

            def _answer(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        """The port actually bound (useful with port 0)."""
        return int(self.server.server_address[1])

    def start(self) -> None:
        """Serve in the background."""
        self.thread.start()
        log.info("metrics on http://%s:%d/metrics", self.server.server_address[0], self.port)

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
