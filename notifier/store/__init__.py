"""The persisted state: watched jobs, the notification outbox, attempts, instances.

One protocol (:class:`Store`, in :mod:`notifier.store.base`; its rows in
:mod:`notifier.store.rows`) and one package per database, a module per concern
inside: :mod:`notifier.store.sqlite` (the embedded default, one daemon) and
:mod:`notifier.store.postgres` (several daemons sharing the work by leases). What
both share: :mod:`~notifier.store.columns` (the columns and their decoders),
:mod:`~notifier.store.shared` (health rule, retention, summaries) and
:mod:`~notifier.store.feed` (the event log's rows). Each backend's schema is a list of
numbered SQL steps under ``migrations/<backend>/``
(:mod:`~notifier.store.schema`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from notifier.config import StateLocation
from notifier.store.base import Store, StoreError
from notifier.store.feed import FeedBounds, FeedEvent, FeedFilter, FeedPage
from notifier.store.rows import (
    DELIVERY_STATES,
    JOB_STATES,
    Attempt,
    AttemptRecord,
    BulkRedelivery,
    CallbackHealth,
    Cursor,
    Delivery,
    HealthChange,
    Instance,
    InstanceRecord,
    JobExtras,
    JobUpdate,
    LateJob,
    NewEvent,
    PollsWritten,
    WatchedJob,
    new_delivery_id,
    updated_at_of,
)
from notifier.store.shared import display_url
from notifier.store.sqlite import SqliteStore

if TYPE_CHECKING:
    from notifier.store.postgres import ImportCounts, PostgresStore

    def _both_are_stores(sqlite: SqliteStore, postgres: PostgresStore) -> tuple[Store, Store]:
        """Type-checked only: both backends implement the protocol."""
        return sqlite, postgres


__all__ = [
    "DELIVERY_STATES",
    "JOB_STATES",
    "Attempt",
    "AttemptRecord",
    "BulkRedelivery",
    "CallbackHealth",
    "Cursor",
    "Delivery",
    "FeedBounds",
    "FeedEvent",
    "FeedFilter",
    "FeedPage",
    "HealthChange",
    "Instance",
    "InstanceRecord",
    "JobExtras",
    "JobUpdate",
    "LateJob",
    "NewEvent",
    "PollsWritten",
    "SqliteStore",
    "Store",
    "StoreError",
    "WatchedJob",
    "backup_state",
    "describe_location",
    "import_sqlite_state",
    "new_delivery_id",
    "open_store",
    "updated_at_of",
]


def open_store(config: StateLocation, instance: Instance | None = None) -> Store:
    """The store ``config`` names, its schema brought up to date.

    ``instance`` is given by a running daemon (it claims work and heartbeats);
    the CLI's commands open the store without one.
    """
    if config.state_url is None:
        return SqliteStore(config.state_path, instance)
    store: Store = _postgres().PostgresStore(config.state_url, instance, config.cluster.lease)
    return store


def import_sqlite_state(config: StateLocation, path: Path) -> ImportCounts:
    """Copy a SQLite state file into the PostgreSQL store ``config`` names."""
    store = open_store(config)
    try:
        if not isinstance(store, _postgres().PostgresStore):
            raise StoreError("import-state copies into PostgreSQL: the config has no state_url")
        counts: ImportCounts = store.import_sqlite(path)
        return counts
    finally:
        store.close()


def backup_state(config: StateLocation, target: Path) -> None:
    """A consistent copy of the SQLite state at ``target`` (PostgreSQL: use pg_dump)."""
    store = open_store(config)
    try:
        if not isinstance(store, SqliteStore):
            raise StoreError("backup copies SQLite state; for PostgreSQL use pg_dump")
        store.backup(target)
    finally:
        store.close()


def _postgres() -> Any:
    try:
        from notifier.store import postgres
    except ImportError:
        raise StoreError(
            "state_url needs the PostgreSQL driver: pip install 'datasaur-notifier[postgres]'"
        ) from None
    return postgres


def describe_location(config: StateLocation) -> str:
    """Where the state lives, for log lines (a URL's password masked)."""
    if config.state_url is None:
        return str(config.state_path)
    return display_url(config.state_url)
