"""Who a job's event goes to, and what it carries beyond the poll's answer.

The poll's claim leaves a job's labels and metadata out (they can be kilobytes; most
polls record nothing): when a round records events, :func:`complete` reads them for
those jobs only (one query), puts them in each event's ``data`` and chooses the event's
callbacks, by :mod:`notifier.routing` for a job without ``notify``. The deadline sweep
builds ``job.late`` from the full row it reads (:func:`late_event`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from notifier import callback_urls
from notifier.config import Config
from notifier.events import LATE_EVENT, build_payload, isoformat
from notifier.routing import Route, routed
from notifier.store import JobExtras, JobUpdate, NewEvent, Store, WatchedJob


@dataclass(frozen=True)
class Recipients:
    """The config's callbacks, their ``events`` filters and the routes, as the poller
    uses them for one round."""

    every: tuple[str, ...]
    filters: Mapping[str, Collection[str]]
    routes: tuple[Route, ...] = ()

    @classmethod
    def of(cls, config: Config) -> Recipients:
        """What ``config`` says (read again after each reload)."""
        filters = {
            name: tuple(settings.events)
            for name, settings in config.callbacks.items()
            if settings.events is not None
        }
        return cls(tuple(config.callbacks), filters, tuple(config.routes))

    def targets(self, job: WatchedJob, labels: Mapping[str, str] | None = None) -> list[str]:
        """The callbacks a job notifies: its ``notify`` list, else the routes' choice by
        ``labels`` (None: not read yet; every callback), else every callback; and its
        own ``callback_url``'s lane."""
        names: Sequence[str] | None = job.notify
        if names is None and labels is not None and self.routes:
            names = routed(self.routes, labels)
        names = self.every if names is None else names
        if job.callback_url is None:
            return list(names)
        return [*names, callback_urls.origin_of(job.callback_url)]

    def accepting(self, targets: Sequence[str], event: str) -> list[str]:
        """The targets that take ``event``: a callback's ``events`` filter may leave it out."""
        filters = self.filters
        return [name for name in targets if name not in filters or event in filters[name]]


def complete(
    updates: Sequence[JobUpdate],
    jobs: Mapping[str, WatchedJob],
    store: Store,
    recipients: Recipients,
) -> list[JobUpdate]:
    """``updates`` with their events' labels and metadata, and callbacks chosen by the
    routes; the updates without events are returned as they are (nothing is read)."""
    eventful = [update.job_id for update in updates if update.events]
    if not eventful:
        return list(updates)
    extras = store.job_extras(eventful)
    completed = []
    for update in updates:
        job = jobs[update.job_id]
        fields = extras.get(update.job_id)
        if update.events and fields is not None:
            events = [with_extras(event, job, fields, recipients) for event in update.events]
            update = update._replace(events=events)
        completed.append(update)
    return completed


def with_extras(
    event: NewEvent, job: WatchedJob, extras: JobExtras, recipients: Recipients
) -> NewEvent:
    """``event`` with the job's labels and metadata in ``data``, to the callbacks its
    labels route it to."""
    data = event.payload["data"]
    data["labels"], data["metadata"] = dict(extras.labels), dict(extras.metadata)
    callbacks = recipients.accepting(recipients.targets(job, extras.labels), event.event)
    return replace(event, callbacks=callbacks)


def late_event(job: WatchedJob, now: float, recipients: Recipients) -> NewEvent:
    """``job.late`` about a full row (``labels`` read): its deadline passed while it ran."""
    assert job.deadline is not None
    extra: dict[str, Any] = {
        "started_at": None if job.started_at is None else isoformat(job.started_at),
        "duration_s": None,
        "eta": None if job.eta is None else isoformat(job.eta),
        "late_by_s": round(now - job.deadline, 3),
    }
    payload = build_payload(
        LATE_EVENT,
        job_id=job.id,
        name=job.name,
        job=job.job,
        previous_status=job.status,
        observed_at=now,
        extra=extra,
        group=job.group,
        labels=job.labels,
        metadata=job.metadata,
        deadline=job.deadline,
    )
    callbacks = recipients.accepting(recipients.targets(job, job.labels or {}), LATE_EVENT)
    return NewEvent(LATE_EVENT, payload, callbacks, target_url=job.callback_url)
