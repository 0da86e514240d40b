"""Groups in the store, on both backends: one SQL text (``?`` placeholders, ``{T}`` for a
caller's time), run inside a transaction the backend opened (:class:`Tx`).

Exactly once: every change that may end a group reads the group's row with
:attr:`Tx.lock` (``FOR UPDATE`` on PostgreSQL; SQLite's write transaction already
serialises) *before* counting its members, one group after another in id order, and
records the event in the transaction that recorded the member status. Two
transactions ending the last two members: the second waits on the row, then counts
(read committed: a fresh snapshot per statement) and finds the group ended.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from notifier.groups import (
    AT_RISK,
    COMPLETED,
    LATE,
    MAX_PAYLOAD_JOBS,
    Counts,
    Group,
    GroupEnded,
    GroupSpec,
    GroupView,
    at_risk,
    decide,
    payload,
    recipients,
)
from notifier.jobfields import metadata_text
from notifier.store.columns import JOB_COLUMNS, dumps, job_row, json_object
from notifier.store.rows import Cursor, NewEvent, WatchedJob, is_quiet

log = logging.getLogger("notifier.store")
GROUP_COLUMNS = (
    "id, name, notify, events, expect, deadline, fail_fast, labels, metadata, callback_url, "
    "source, state, created_at, updated_at, sealed_at, ended_at, at_risk_at, late_at"
)
RUNNING = "state IN ('open', 'sealed')"
_STATS = """
    SELECT {key}count(*),
           coalesce(sum(CASE WHEN state = 'done' AND status = 'DELIVERED' THEN 1 ELSE 0 END), 0),
           coalesce(sum(CASE WHEN state = 'done' AND coalesce(status, '') <> 'DELIVERED'
                             THEN 1 ELSE 0 END), 0),
           coalesce(sum(CASE WHEN state = 'expired' THEN 1 ELSE 0 END), 0),
           min(coalesce(started_at, registered_at)),
           max(CASE WHEN state = 'watching' THEN eta END)
    FROM jobs WHERE group_id {where}
"""
Filters = Mapping[str, Collection[str]]


class Tx:
    """An open transaction of either backend, taking ``?`` SQL."""

    def __init__(
        self,
        execute: Callable[[str, Sequence[Any]], Any],
        *,
        postgres: bool,
        stamp: Callable[[float | None], float | None] = lambda t: t,
    ) -> None:
        self._execute = execute
        self.postgres = postgres
        self.stamp = stamp  # a caller's time as the parameter {T} takes
        self.lock = " FOR UPDATE" if postgres else ""
        self.time = "(extract(epoch from now()) + ?::float8)" if postgres else "?"
        self.jsonb = "?::jsonb" if postgres else "?"

    def run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Execute ``sql`` (``{T}``: a time parameter) and return the cursor."""
        sql = sql.replace("{T}", self.time)
        return self._execute(sql.replace("?", "%s") if self.postgres else sql, params)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """The rows ``sql`` selects."""
        return list(self.run(sql, params).fetchall())

    def change(self, sql: str, params: Sequence[Any] = ()) -> int:
        """How many rows ``sql`` changed."""
        return int(self.run(sql, params).rowcount)

    def among(self, ids: Iterable[str]) -> tuple[str, Any]:
        """``column <this>`` matching any of ``ids``, and its parameter."""
        if self.postgres:
            return "= ANY(?)", list(ids)
        return "IN (SELECT value FROM json_each(?))", json.dumps(list(ids))

    def label_filter(self, labels: Sequence[tuple[str, str]]) -> tuple[str, list[Any]]:
        """`` AND ...`` for groups carrying every one of ``labels``."""
        if not labels:
            return "", []
        if self.postgres:
            return " AND labels @> ?::jsonb", [json.dumps(dict(labels))]
        clauses = " AND json_extract(labels, ?) = ?" * len(labels)
        return clauses, [item for k, v in labels for item in (f'$."{k}"', v)]


def touched_groups(
    updates: Sequence[Any], refused: Collection[str]
) -> tuple[set[str], dict[str, float], float]:
    """Of a poll write's updates (not ``refused``): the groups of members that ended (they
    may end the group), each group's latest estimate among members still running (it may
    put the group at risk), and the write's time."""
    ended, estimated, now = set[str](), dict[str, float](), 0.0
    for u in updates:
        if u.group is None or u.job_id in refused:
            continue
        now = max(now, u.polled_at)
        if u.state != "watching":
            ended.add(u.group)
        elif u.eta is not None and u.eta > estimated.get(u.group, 0.0):
            estimated[u.group] = u.eta
    return ended, estimated, now


def records_only_schedules(updates: Sequence[Any]) -> bool:
    """Whether a poll write is quiet polls only (:func:`~notifier.store.rows.is_quiet`)
    with no group to settle: it records schedules and estimates, nothing to notify."""
    if not all(is_quiet(u) for u in updates):
        return False
    ended, estimated, _ = touched_groups(updates, ())
    return not ended and not estimated


def group_row(row: Sequence[Any]) -> Group:
    """A :data:`GROUP_COLUMNS` row as a :class:`Group`."""
    notify, events = (None if v is None else tuple(json.loads(v)) for v in row[2:4])
    return Group(
        row[0], row[1], notify, events, row[4], row[5], bool(row[6]), json_object(row[7]),
        json_object(row[8]), *row[9:18],
    )  # fmt: skip


def read_group(tx: Tx, group_id: str, lock: bool = False) -> Group | None:
    """The group ``group_id`` (locked for the transaction with ``lock``)."""
    rows = tx.rows(
        f"SELECT {GROUP_COLUMNS} FROM job_groups WHERE id = ?{tx.lock if lock else ''}",
        (group_id,),
    )
    return group_row(rows[0]) if rows else None


def _stats(row: Sequence[Any]) -> tuple[Counts, float | None, float | None]:
    return Counts(*(int(v) for v in row[:4])), row[4], row[5]


def view_of(tx: Tx, group: Group) -> GroupView:
    """``group`` with its members' counts, first start and latest estimate."""
    row = tx.rows(_STATS.format(key="", where="= ?"), (group.id,))[0]
    return GroupView(group, *_stats(row))


def members(tx: Tx, group_id: str, limit: int | None = None) -> list[WatchedJob]:
    """A group's members in registration order."""
    rows = tx.rows(
        f"SELECT {JOB_COLUMNS} FROM jobs WHERE group_id = ? ORDER BY registered_at, id"
        f"{'' if limit is None else f' LIMIT {int(limit)}'}",
        (group_id,),
    )
    return [job_row(row) for row in rows]


def views(
    tx: Tx,
    *,
    state: str | None = None,
    group_id: str | None = None,
    labels: Sequence[tuple[str, str]] = (),
    after: Cursor | None = None,
    limit: int | None = None,
) -> list[GroupView]:
    """Groups in creation order (then id), filtered, with their members' counts."""
    where, params = " WHERE 1 = 1", list[Any]()
    for column, value in (("state", state), ("id", group_id)):
        if value is not None:
            where, params = f"{where} AND {column} = ?", [*params, value]
    clause, values = tx.label_filter(labels)
    where, params = where + clause, params + values
    if after is not None:
        where, params = f"{where} AND (created_at, id) > (?, ?)", [*params, *after]
    limit_sql = "" if limit is None else f" LIMIT {int(limit)}"
    found = [
        group_row(row)
        for row in tx.rows(
            f"SELECT {GROUP_COLUMNS} FROM job_groups{where} ORDER BY created_at, id{limit_sql}",
            params,
        )
    ]
    if not found:
        return []
    condition, ids = tx.among(g.id for g in found)
    stats = {
        row[0]: _stats(row[1:])
        for row in tx.rows(
            _STATS.format(key="group_id, ", where=condition) + " GROUP BY group_id", (ids,)
        )
    }
    return [GroupView(g, *stats.get(g.id, (Counts(), None, None))) for g in found]


def join(tx: Tx, group_id: str | None, stored_group: str | None, now: float) -> None:
    """Before a job is registered into ``group_id``: create the group open (no
    callbacks) if it is undeclared; refuse to join one that has ended."""
    if group_id is None or group_id == stored_group:
        return
    tx.change(
        "INSERT INTO job_groups (id, source, state, created_at, updated_at)"
        " VALUES (?, 'job', 'open', {T}, {T}) ON CONFLICT (id) DO NOTHING",
        (group_id, tx.stamp(now), tx.stamp(now)),
    )
    group = read_group(tx, group_id, lock=True)
    if group is not None and group.ended:
        raise GroupEnded(group_id, group.state)


def seal_if_expected(tx: Tx, group_id: str | None, now: float) -> None:
    """Seal ``group_id`` once ``expect`` members have registered."""
    if group_id is None:
        return
    tx.change(
        "UPDATE job_groups SET state = 'sealed', sealed_at = {T} WHERE id = ? AND state = 'open'"
        " AND expect IS NOT NULL AND expect <= (SELECT count(*) FROM jobs WHERE group_id = ?)",
        (tx.stamp(now), group_id, group_id),
    )


def _event(tx: Tx, event: str, view: GroupView, now: float, filters: Filters) -> NewEvent:
    found = members(tx, view.group.id, MAX_PAYLOAD_JOBS + 1)
    body = payload(event, view, found, now)
    if len(found) > MAX_PAYLOAD_JOBS:
        body["data"]["jobs_truncated"] = True
    group = view.group
    callbacks = recipients(group, event, filters)
    log.info("group %s: %s, notifying %s", group.id, event,
             ", ".join(callbacks) or "no callback (none named or taking it)")  # fmt: skip
    return NewEvent(event, body, callbacks, target_url=group.callback_url)


def settle(tx: Tx, group_ids: Iterable[str | None], now: float, filters: Filters) -> list[NewEvent]:
    """group.completed / group.failed for the groups among ``group_ids`` that end now,
    each recorded once: locked in id order, counted after the lock."""
    events = []
    for group_id in sorted({g for g in group_ids if g is not None}):
        group = read_group(tx, group_id, lock=True)
        if group is None or group.ended:
            continue
        view = view_of(tx, group)
        event = decide(group, view.counts)
        if event is None:
            continue
        state = "completed" if event == COMPLETED else "failed"
        tx.change(
            "UPDATE job_groups SET state = ?, ended_at = {T}, updated_at = {T},"
            " sealed_at = coalesce(sealed_at, {T}) WHERE id = ?",
            (state, tx.stamp(now), tx.stamp(now), tx.stamp(now), group_id),
        )
        ended = replace(group, state=state, ended_at=now)
        events.append(_event(tx, event, view._replace(group=ended), now, filters))
    return events


def warn_at_risk(
    tx: Tx, estimated: Mapping[str, float], now: float, filters: Filters
) -> list[NewEvent]:
    """group.at_risk for the groups whose members' latest estimate (``estimated``: this
    write's, by group) lies after their deadline, before it. One probe for the write's
    groups; a group's other members were weighed when their own estimates were written,
    so only a group this write puts past its deadline is read further."""
    if not estimated:
        return []
    condition, ids = tx.among(sorted(estimated))
    probed = tx.rows(
        f"SELECT id, deadline FROM job_groups WHERE id {condition} AND deadline IS NOT NULL"
        f" AND at_risk_at IS NULL AND late_at IS NULL AND {RUNNING}",
        (ids,),
    )
    events = []
    for group_id, deadline in sorted(probed):
        if not now < deadline < estimated[group_id]:
            continue
        group = read_group(tx, group_id, lock=True)
        if group is None or not at_risk(group, estimated[group_id], now):
            continue
        tx.change("UPDATE job_groups SET at_risk_at = {T} WHERE id = ?", (tx.stamp(now), group_id))
        marked = view_of(tx, replace(group, at_risk_at=now))
        events.append(_event(tx, AT_RISK, marked, now, filters))
    return events


def mark_late(tx: Tx, now: float, filters: Filters, limit: int) -> list[NewEvent]:
    """group.late for running groups whose deadline passed by ``now`` (once each)."""
    due = tx.rows(
        "SELECT id FROM job_groups WHERE deadline IS NOT NULL AND late_at IS NULL"
        f" AND {RUNNING} AND deadline <= {{T}} ORDER BY id LIMIT {int(limit)}",
        (tx.stamp(now),),
    )
    events = []
    for (group_id,) in due:
        group = read_group(tx, group_id, lock=True)
        if group is None or group.ended or group.late_at is not None:
            continue
        tx.change("UPDATE job_groups SET late_at = {T} WHERE id = ?", (tx.stamp(now), group_id))
        marked = view_of(tx, replace(group, late_at=now))
        events.append(_event(tx, LATE, marked, now, filters))
    return events


_UPSERT = """
    INSERT INTO job_groups (id, name, notify, events, expect, deadline, fail_fast, labels,
                            metadata, callback_url, source, state, created_at, updated_at)
    VALUES (?, ?, ?, ?, ?, {T}, ?, {J}, ?, ?, ?, ?, {T}, {T})
    ON CONFLICT (id) DO UPDATE SET
        name = excluded.name, notify = excluded.notify, events = excluded.events,
        expect = excluded.expect, deadline = excluded.deadline, fail_fast = excluded.fail_fast,
        labels = excluded.labels, metadata = excluded.metadata,
        callback_url = excluded.callback_url, source = excluded.source,
        state = excluded.state, updated_at = excluded.updated_at
"""
_FIELDS = ("name", "notify", "events", "expect", "deadline", "fail_fast", "labels", "metadata",
           "callback_url")  # fmt: skip


def put(
    tx: Tx,
    spec: GroupSpec,
    given: Collection[str],
    now: float,
    source: str,
    filters: Filters,
) -> tuple[Group, list[NewEvent]]:
    """Create or update a group: the fields in ``given`` replace the stored ones (a
    duration deadline counts from now; a config group's from its creation), ``sealed``
    seals it (sealing is one-way). Returns the group and the events it ends with now."""
    stored = read_group(tx, spec.id, lock=True)
    values: dict[str, Any] = {name: getattr(stored, name) for name in _FIELDS} if stored else {}
    for name in _FIELDS:
        if name in given or stored is None:
            values[name] = getattr(spec, name)
    if "deadline" in given or stored is None:
        since = stored.created_at if stored is not None and source == "config" else now
        values["deadline"] = None if spec.deadline is None else spec.deadline.resolve(since)
    state = "open" if stored is None else stored.state
    if spec.sealed and state == "open":
        state = "sealed"
    labels = values["labels"]
    tx.change(
        _UPSERT.replace("{J}", tx.jsonb),
        (spec.id, values["name"], dumps(_listed(values["notify"])),
         dumps(_listed(values["events"])), values["expect"], tx.stamp(values["deadline"]),
         bool(values["fail_fast"]), json.dumps(labels) if labels else None,
         None if not values["metadata"] else metadata_text(values["metadata"]),
         values["callback_url"], source, state, tx.stamp(now), tx.stamp(now)),
    )  # fmt: skip
    tx.change(
        "UPDATE job_groups SET sealed_at = {T} WHERE id = ? AND state <> 'open'"
        " AND sealed_at IS NULL",
        (tx.stamp(now), spec.id),
    )
    seal_if_expected(tx, spec.id, now)
    events = settle(tx, [spec.id], now, filters)
    group = read_group(tx, spec.id)
    assert group is not None
    return group, events


def _listed(value: Any) -> list[Any] | None:
    return None if value is None else list(value)


def seal(
    tx: Tx, group_id: str, now: float, filters: Filters
) -> tuple[Group | None, list[NewEvent]]:
    """Seal a group (it may end at once); None if it is unknown."""
    group = read_group(tx, group_id, lock=True)
    if group is None:
        return None, []
    tx.change(
        "UPDATE job_groups SET state = 'sealed', sealed_at = {T}, updated_at = {T}"
        " WHERE id = ? AND state = 'open'",
        (tx.stamp(now), tx.stamp(now), group_id),
    )
    events = settle(tx, [group_id], now, filters)
    return read_group(tx, group_id), events


def delete(tx: Tx, group_id: str) -> Group | None:
    """Forget a group and stop watching its members (their pending deliveries stay)."""
    group = read_group(tx, group_id, lock=True)
    if group is None:
        return None
    tx.change(
        "UPDATE jobs SET state = 'unwatched', unwatched_by = 'operator', next_poll_at = NULL"
        " WHERE group_id = ? AND state = 'watching'",
        (group_id,),
    )
    tx.change("DELETE FROM job_groups WHERE id = ?", (group_id,))
    return group


def prune(tx: Tx, cutoff: float) -> int:
    """Retention: forget groups that ended before ``cutoff`` and whose members retention
    has removed; returns how many."""
    return tx.change(
        "DELETE FROM job_groups WHERE state IN ('completed', 'failed') AND ended_at < {T}"
        " AND NOT EXISTS (SELECT 1 FROM jobs WHERE jobs.group_id = job_groups.id)",
        (tx.stamp(cutoff),),
    )
