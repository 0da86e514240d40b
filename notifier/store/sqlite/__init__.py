"""The SQLite backend: one file in WAL mode, one daemon (held by a file lock).

Every change that must be atomic -- a job's new status together with its outbox rows,
an attempt together with its delivery's new state -- is one ``BEGIN IMMEDIATE``
transaction. One daemon owns the file, so work needs no leases: claims are plain
reads and the delivery lanes keep their in-flight ids in memory.

One module per concern: ``connection`` (connections, transactions, migrations),
``jobs`` (the watch list), ``polls`` (claims and poll writes), ``outbox``
(deliveries and attempts), ``health`` (callback health), ``instances`` (heartbeat,
rate limit), ``maintenance`` (retention, backup), ``feed`` (the event log),
``silences``, ``reminders`` (reminders and acks),
``deadlines`` (an event's labels and metadata, the deadline sweep), ``digests``
(closing a digest's window), ``groups`` (groups of jobs,
:mod:`notifier.store.groupstore`).
"""

from __future__ import annotations

from notifier.store.sqlite.deadlines import SqliteDeadlines
from notifier.store.sqlite.digests import SqliteDigests
from notifier.store.sqlite.feed import SqliteFeed
from notifier.store.sqlite.groups import SqliteGroups
from notifier.store.sqlite.health import SqliteHealth
from notifier.store.sqlite.instances import SqliteInstances
from notifier.store.sqlite.jobs import SqliteJobs
from notifier.store.sqlite.maintenance import SqliteMaintenance
from notifier.store.sqlite.outbox import SqliteOutbox
from notifier.store.sqlite.polls import SqlitePolls
from notifier.store.sqlite.reminders import SqliteReminders
from notifier.store.sqlite.silences import SqliteSilences

__all__ = ["SqliteStore"]


class SqliteStore(
    SqliteJobs,
    SqlitePolls,
    SqliteOutbox,
    SqliteHealth,
    SqliteInstances,
    SqliteMaintenance,
    SqliteFeed,
    SqliteSilences,
    SqliteReminders,
    SqliteDeadlines,
    SqliteDigests,
    SqliteGroups,
):
    """:class:`~notifier.store.base.Store` on one SQLite file in WAL mode."""
