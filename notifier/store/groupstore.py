"""The groups part of the :class:`~notifier.store.base.Store`, the same on both
backends: each backend gives a transaction (:meth:`GroupStore._group_tx`, with how it
enqueues events) and a read connection (:meth:`GroupStore._group_read`); the SQL is
:mod:`notifier.store.grouping`'s."""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from types import MappingProxyType

from notifier.groups import Group, GroupSpec, GroupView
from notifier.store import grouping
from notifier.store.grouping import Tx
from notifier.store.rows import Cursor, NewEvent

Enqueue = Callable[[Sequence[NewEvent], float], int]
ALL_FIELDS = frozenset(GroupSpec.model_fields)
LATE_GROUPS = 100  # groups the deadline sweep marks late per transaction


class GroupStore:
    """Declaring, sealing, listing and deleting groups; their deadline sweep."""

    # The config's callbacks' ``events`` filters: the daemon sets them (and after a
    # reload) so that a group event recorded anywhere goes only where it is taken.
    group_filters: Mapping[str, Collection[str]] = MappingProxyType({})

    def _group_tx(self) -> AbstractContextManager[tuple[Tx, Enqueue]]:
        raise NotImplementedError

    def _group_read(self) -> AbstractContextManager[Tx]:
        raise NotImplementedError

    def sync_config_groups(self, specs: Iterable[GroupSpec], now: float) -> int:
        """Declare the config file's groups (sealed: their members are the config's
        jobs naming them); returns the outbox rows created (a group may end at once)."""
        events: list[NewEvent] = []
        with self._group_tx() as (tx, enqueue):
            for spec in sorted(specs, key=lambda s: s.id):
                sealed = spec.model_copy(update={"sealed": True})
                _, ended = grouping.put(tx, sealed, ALL_FIELDS, now, "config", self.group_filters)
                events += ended
            return enqueue(events, now)

    def put_group(self, spec: GroupSpec, given: Collection[str], now: float) -> Group:
        """Create or update a group over the API: the fields in ``given`` replace the
        stored ones."""
        with self._group_tx() as (tx, enqueue):
            group, events = grouping.put(tx, spec, given, now, "api", self.group_filters)
            enqueue(events, now)
        return group

    def seal_group(self, group_id: str, now: float) -> Group | None:
        """Seal a group (it ends now if every member has); None if it is unknown."""
        with self._group_tx() as (tx, enqueue):
            group, events = grouping.seal(tx, group_id, now, self.group_filters)
            enqueue(events, now)
        return group

    def delete_group(self, group_id: str) -> Group | None:
        """Forget a group and stop watching its members; None if it is unknown."""
        with self._group_tx() as (tx, _):
            return grouping.delete(tx, group_id)

    def groups(
        self,
        state: str | None = None,
        labels: Sequence[tuple[str, str]] = (),
        after: Cursor | None = None,
        limit: int | None = None,
        group_id: str | None = None,
    ) -> list[GroupView]:
        """Groups in creation order, filtered (``labels``: all must match), with counts."""
        with self._group_read() as tx:
            return grouping.views(
                tx, state=state, group_id=group_id, labels=labels, after=after, limit=limit
            )

    def record_groups_late(self, now: float) -> int:
        """Record ``group.late`` for running groups whose deadline passed; returns the
        outbox rows created."""
        created = 0
        while True:
            with self._group_tx() as (tx, enqueue):
                events = grouping.mark_late(tx, now, self.group_filters, LATE_GROUPS)
                created += enqueue(events, now)
            if len(events) < LATE_GROUPS:
                return created

    def _settle_polls(
        self, tx: Tx, ended: Iterable[str | None], estimated: Mapping[str, float], now: float
    ) -> list[NewEvent]:
        """In a poll write's transaction: the events of the groups it ends or puts at risk."""
        filters = self.group_filters
        return [*grouping.settle(tx, ended, now, filters),
                *grouping.warn_at_risk(tx, estimated, now, filters)]  # fmt: skip
