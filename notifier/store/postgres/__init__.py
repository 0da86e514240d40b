"""The PostgreSQL backend: several daemons share one database and divide the work.

How work is shared (see the README's "Running several instances"):

- A claim is one statement: ``FOR UPDATE SKIP LOCKED`` in a CTE picks due rows no
  live lease holds, and the ``UPDATE`` around it stamps ``lease_owner`` (this process's
  random id), a fresh ``lease_token`` and ``lease_until``. It commits before any HTTP
  or SMTP call; no transaction is ever held open across one.
- The write that follows (a poll's status + outbox rows, an attempt + the delivery's
  new state) is one transaction that matches owner *and* token, and releases the
  lease. If the lease was lost meanwhile (expired and taken over), it changes nothing.
- Every time is the database's: a caller's local time ``t`` is stored as
  ``now() + (t - time.time())``, so clocks that differ between hosts never cause
  double work, and only local durations (monotonic in practice) cross the boundary.
- New outbox rows ``NOTIFY`` the other daemons, which ``LISTEN`` on a connection of
  their own (with the delivery tick as the fallback).

One module per concern: ``connection`` (the pool, times, migrations), ``jobs`` (the
watch list), ``claims`` (leased claims and the poll writes they fence), ``outbox``
(deliveries and attempts), ``health`` (callback health), ``leases`` (heartbeats and
lease renewal), ``maintenance`` (housekeeping, retention), ``ratelimit`` (the shared
Datasaur cap), ``notify`` (LISTEN), ``importer`` (``import-state``), ``feed`` (the
event log), ``digests`` (closing a digest's window, one daemon per callback at a time),
``silences``, ``reminders`` (reminders and acks), ``groups`` (groups of jobs,
:mod:`notifier.store.groupstore`).
"""

from __future__ import annotations

from notifier.store.postgres.claims import PostgresClaims
from notifier.store.postgres.deadlines import PostgresDeadlines
from notifier.store.postgres.digests import PostgresDigests
from notifier.store.postgres.feed import PostgresFeed
from notifier.store.postgres.groups import PostgresGroups
from notifier.store.postgres.health import PostgresHealth
from notifier.store.postgres.importer import ImportCounts, PostgresImport
from notifier.store.postgres.jobs import PostgresJobs
from notifier.store.postgres.leases import PostgresLeases
from notifier.store.postgres.maintenance import PostgresMaintenance
from notifier.store.postgres.notify import PostgresListener
from notifier.store.postgres.outbox import PostgresOutbox
from notifier.store.postgres.ratelimit import PostgresRateLimit, SharedRateLimiter
from notifier.store.postgres.reminders import PostgresReminders
from notifier.store.postgres.silences import PostgresSilences

__all__ = ["ImportCounts", "PostgresStore", "SharedRateLimiter"]


class PostgresStore(
    PostgresJobs,
    PostgresClaims,
    PostgresOutbox,
    PostgresHealth,
    PostgresLeases,
    PostgresMaintenance,
    PostgresRateLimit,
    PostgresListener,
    PostgresImport,
    PostgresFeed,
    PostgresSilences,
    PostgresReminders,
    PostgresDeadlines,
    PostgresDigests,
    PostgresGroups,
):
    """:class:`~notifier.store.base.Store` on a PostgreSQL database, shared by daemons."""
