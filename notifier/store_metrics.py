"""The gauges read from the state store at each scrape (``/metrics``): jobs by state,
the outbox, its oldest pending row, paused callbacks, live instances, silenced rows."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from notifier.store import DELIVERY_STATES, JOB_STATES, Store, StoreError


class StoreCollector(Collector):
    """Jobs by state, outbox backlog, the age of the oldest pending delivery, which
    callbacks are paused, and how many instances are alive."""

    def __init__(self, store: Store, callbacks: Callable[[], Iterable[str]]) -> None:
        self.store = store
        self.callbacks = callbacks

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.store.counts()
            oldest = self.store.oldest_pending()
            health = self.store.callback_health()
            instances = self.store.instances(time.time())
            silenced = self.store.silenced_by_callback()
        except StoreError:
            return  # /healthz reports the outage; the counters still scrape
        jobs = GaugeMetricFamily("notifier_jobs", "Watched jobs by state", labels=["state"])
        for state in JOB_STATES:
            jobs.add_metric([state], counts["jobs"].get(state, 0))
        yield jobs
        deliveries = GaugeMetricFamily("notifier_outbox", "Outbox rows by state", labels=["state"])
        for state in DELIVERY_STATES:
            deliveries.add_metric([state], counts["deliveries"].get(state, 0))
        yield deliveries
        yield GaugeMetricFamily(
            "notifier_outbox_oldest_pending_seconds",
            "Age of the oldest pending delivery",
            value=0.0 if oldest is None else max(0.0, time.time() - oldest),
        )
        paused = GaugeMetricFamily(
            "notifier_callback_paused", "1 while a callback's lane is paused", labels=["callback"]
        )
        paused_at = {h.callback: h.paused_at for h in health}
        for name in sorted(set(self.callbacks()) | set(paused_at)):
            paused.add_metric([name], 0.0 if paused_at.get(name) is None else 1.0)
        yield paused
        yield GaugeMetricFamily(
            "notifier_instances_alive",
            "Daemons sharing the state that heartbeat within their lease",
            value=sum(1 for instance in instances if instance.alive),
        )
        held = GaugeMetricFamily(
            "notifier_silenced_deliveries",
            "Deliveries a silence holds, by callback",
            labels=["callback"],
        )
        for name in sorted(set(self.callbacks()) | set(silenced)):
            held.add_metric([name], silenced.get(name, 0))
        yield held
