"""The registration API as a WSGI application (Falcon): routes, tokens, JSON errors.

Every answer the application makes is JSON; every error is
``{"error": "...", "details": [{"path", "message"}]}`` and never a traceback. Tokens are
compared in constant time and never logged (their ``name`` is); an address with more
than :data:`MAX_FAILURES` failed authentications within a minute gets ``429``.
"""

from __future__ import annotations

import collections
import hmac
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import falcon

from notifier import callback_urls, watchlist
from notifier.api import models, openapi, static
from notifier.api.acks import AckHandlers
from notifier.api.feed import Feed
from notifier.api.groups import GroupHandlers
from notifier.api.parsing import (
    INVALID,
    ApiError,
    detail,
    read_json,
    validate,
    validate_query,
)
from notifier.api.paths import add_routes
from notifier.api.silences import SilenceHandlers
from notifier.channels.base import CallbackSettings, host_of
from notifier.config import JobSpec, unknown_callback
from notifier.config_service import ApiSettings
from notifier.groups import GroupEnded
from notifier.jobfields import GroupConflict, label_filter
from notifier.metrics import Health
from notifier.report import attempt_document, delivery_document, job_document
from notifier.store import Cursor, Store, StoreError, WatchedJob
from notifier.watchlist import JOB_FIELDS

log = logging.getLogger(__name__)

MAX_FAILURES = 10
FAILURE_WINDOW = 60.0
MAX_TRACKED_ADDRESSES = 10_000
# Every answer of the listener (page, files, JSON, errors): no inline script, no framing,
# no sniffing, no referrer, nothing fetched from another site.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Caller:
    """Who a request's token says it is."""

    name: str
    scope: str


class FailedLogins:
    """Failed authentications per client address over the last minute."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._failures: dict[str, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> collections.deque[float]:
        times = self._failures.get(address, collections.deque())
        while times and times[0] <= now - FAILURE_WINDOW:
            times.popleft()
        return times

    def retry_after(self, address: str) -> float | None:
        """Seconds the address must wait, or None if it is not throttled."""
        with self._lock:
            now = self.clock()
            times = self._recent(address, now)
            if len(times) < MAX_FAILURES:
                return None
            return max(1.0, times[0] + FAILURE_WINDOW - now)

    def failed(self, address: str) -> None:
        """Count one failure (forgetting the oldest addresses beyond a bound)."""
        with self._lock:
            now = self.clock()
            times = self._recent(address, now)
            times.append(now)
            self._failures.pop(address, None)
            self._failures[address] = times
            while len(self._failures) > MAX_TRACKED_ADDRESSES:
                self._failures.pop(next(iter(self._failures)))


class Api:
    """The handlers, bound to the store and the config; :meth:`wsgi` builds the app."""

    def __init__(
        self,
        store: Store,
        settings: ApiSettings,
        callbacks: Mapping[str, CallbackSettings],
        health: Health,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.health = health
        self.clock = clock
        self.failures = FailedLogins()
        self.feed = Feed(store, settings.max_waiters)
        self.reconfigure(settings, callbacks)

    def reconfigure(self, settings: ApiSettings, callbacks: Mapping[str, CallbackSettings]) -> None:
        """New tokens, prefixes and callback names (after SIGHUP); the listener stays."""
        self.settings = settings
        self.callbacks = callbacks
        self._tokens = [
            (token.token.get_secret_value().encode(), Caller(token.name, token.scope))
            for token in settings.tokens
        ]

    # --- authentication -------------------------------------------------------------

    def authenticate(self, req: falcon.Request, scope: str) -> Caller:
        """The caller of ``req``, allowed ``scope``; else an :class:`ApiError`."""
        address = req.remote_addr or "unknown"
        wait = self.failures.retry_after(address)
        if wait is not None:
            raise ApiError(
                429,
                "too many failed authentications; try again later",
                headers={"Retry-After": str(int(wait + 0.999))},
            )
        caller = self._caller(req.get_header("Authorization") or "")
        if caller is None:
            self.failures.failed(address)
            log.warning("api: %s %s from %s: authentication failed", req.method, req.path, address)
            raise ApiError(
                401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"}
            )
        if scope == "write" and caller.scope != "write":
            raise ApiError(403, f"token {caller.name!r} may only read")
        return caller

    def _caller(self, header: str) -> Caller | None:
        kind, _, presented = header.partition(" ")
        if kind.lower() != "bearer" or not presented.strip():
            return None
        given = presented.strip().encode()
        found = None
        for token, caller in self._tokens:  # compare with every token, in constant time
            if hmac.compare_digest(token, given):
                found = caller
        return found

    # --- handlers -----------------------------------------------------------------------

    def healthz(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        problem = self.health.problem()
        resp.status = 200 if problem is None else 503
        resp.content_type = falcon.MEDIA_TEXT
        resp.text = "ok\n" if problem is None else f"{problem}\n"

    def openapi(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        resp.media = openapi.openapi()

    def whoami(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        assert caller is not None
        resp.media = {"name": caller.name, "scope": caller.scope}

    def register(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        assert caller is not None
        body = validate(models.JobRegistration, read_json(req), self._reference_problems)
        existing = self.store.jobs(job_id=body.id)
        merged = merge(existing[0] if existing else None, body)
        callback_url = merged.pop("callback_url")
        try:
            job = self.store.watch(
                JobSpec.model_validate(merged), self.clock(), "api", callback_url
            )
        except GroupConflict as exc:
            raise ApiError(422, INVALID, [detail("group", str(exc))]) from None
        except GroupEnded as exc:
            raise ApiError(409, str(exc), [detail("group", str(exc))]) from None
        resp.status = 200 if existing else 201
        resp.media = {"job": self._documents([job])[0]}
        log.info(
            "api: token %r %s job %s%s",
            caller.name,
            "updated" if existing else "registered",
            job.id,
            f" (callback_url {callback_urls.origin_of(job.callback_url)})"
            if job.callback_url
            else "",
        )

    def _reference_problems(self, body: dict[str, Any]) -> list[dict[str, str]]:
        """Unknown callback names and refused callback URLs in a raw registration."""
        problems = []
        notify = body.get("notify")
        for index, name in enumerate(notify if isinstance(notify, list) else []):
            if isinstance(name, str) and (problem := unknown_callback(name, self.callbacks)):
                problems.append(detail(f"notify[{index}]", problem))
        callback_url = body.get("callback_url")
        if isinstance(callback_url, str):
            try:
                callback_urls.matching_prefix(callback_url, self.settings.allow_callback_urls)
            except callback_urls.Refused as exc:
                problems.append(detail("callback_url", str(exc)))
        return problems

    def list_jobs(self, req: falcon.Request, resp: falcon.Response, caller: Caller | None) -> None:
        query = validate_query(models.JobsQuery, req, repeatable=("label",))
        after = None if query.cursor is None else models.decode_cursor(query.cursor)
        labels = label_filter(query.labels())
        if labels is None:  # one key wanted with two values: no job has both
            resp.media = {"jobs": [], "next_cursor": None}
            return
        jobs = self.store.jobs(
            state=query.state,
            after=after,
            limit=query.limit + 1,
            group=query.group,
            labels=labels,
        )
        page, cursor = _page(jobs, query.limit, lambda job: (job.registered_at, job.id))
        resp.media = {"jobs": self._documents(page), "next_cursor": cursor}

    def get_job(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, job_id: str
    ) -> None:
        found = self.store.jobs(job_id=job_id)
        if not found:
            raise ApiError(404, f"no job {job_id!r}")
        document = self._documents(found)[0]
        document["deliveries"] = [
            {**delivery_document(d), "history": self._history(d.id)}
            for d in self.store.deliveries(job_id=job_id)
        ]
        resp.media = {"job": document}

    def _documents(self, jobs: Sequence[WatchedJob]) -> list[dict[str, Any]]:
        """The API's job objects, each with its ``ack``."""
        acks = self.store.acks("job", [job.id for job in jobs])
        return [job_document(job, acks.get(job.id)) for job in jobs]

    def _history(self, delivery_id: str) -> list[dict[str, Any]]:
        return [attempt_document(a) for a in self.store.attempts(delivery_id)]

    def delete_job(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, job_id: str
    ) -> None:
        assert caller is not None
        job = self.store.unwatch(job_id)
        if job is None:
            raise ApiError(404, f"no job {job_id!r}")
        log.info("api: token %r unwatched job %s (%s)", caller.name, job.id, job.state)
        resp.media = {"job": self._documents([job])[0]}

    def list_deliveries(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None
    ) -> None:
        query = validate_query(models.DeliveriesQuery, req)
        after = None if query.cursor is None else models.decode_cursor(query.cursor)
        rows = self.store.deliveries(
            state=query.state,
            job_id=query.job_id,
            callback=query.callback,
            after=after,
            limit=query.limit + 1,
        )
        page, cursor = _page(rows, query.limit, lambda row: (row.created_at, row.id))
        resp.media = {"deliveries": [delivery_document(d) for d in page], "next_cursor": cursor}

    def redeliver(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None, delivery_id: str
    ) -> None:
        assert caller is not None
        delivery = self.store.redeliver(delivery_id, self.clock())
        if delivery is None:
            raise ApiError(404, f"no delivery {delivery_id!r}")
        log.info(
            "api: token %r queued delivery %s again (%s for %s to %s)",
            caller.name,
            delivery.id,
            delivery.event,
            delivery.job_id,
            delivery.callback,
        )
        resp.status = 202
        document = delivery_document(delivery)
        document["history"] = self._history(delivery.id)
        resp.media = {"delivery": document}

    def list_callbacks(
        self, req: falcon.Request, resp: falcon.Response, caller: Caller | None
    ) -> None:
        pending = self.store.pending_by_callback()
        dead = self.store.dead_by_callback()
        health = {h.callback: h for h in self.store.callback_health()}
        names = list(self.callbacks)  # configured ones in config order, then other lanes
        names += sorted((pending.keys() | dead.keys()) - set(names))
        documents = []
        for name in names:
            record = health.get(name)
            kind, target = self._points_at(name)
            documents.append(
                {
                    "name": name,
                    "type": kind,
                    "target": target,
                    "pending": pending.get(name, 0),
                    "dead": dead.get(name, 0),
                    "paused": record is not None and record.paused_at is not None,
                    "consecutive_failures": 0 if record is None else record.consecutive_failures,
                    "last_error": None if record is None else record.last_error,
                }
            )
        resp.media = {"callbacks": documents}

    def _points_at(self, name: str) -> tuple[str | None, str | None]:
        """A lane's channel type and host, as far as the config says (None: not in it)."""
        settings = self.callbacks.get(name)
        if settings is not None:
            return settings.type, settings.target()
        if name.startswith(callback_urls.CALLBACK_PREFIX):  # a job's own callback_url
            return "webhook", host_of(name.removeprefix(callback_urls.CALLBACK_PREFIX))
        return None, None

    # --- the WSGI application -------------------------------------------------------------

    def wsgi(self) -> falcon.App[falcon.Request, falcon.Response]:
        """The Falcon application serving :data:`~notifier.api.openapi.ENDPOINTS`."""
        app = falcon.App(media_type=falcon.MEDIA_JSON, middleware=[SecurityHeaders()])
        app.req_options.strip_url_path_trailing_slash = False
        app.set_error_serializer(_serialize_error)
        app.add_error_handler(ApiError, _api_error)
        app.add_error_handler(StoreError, _store_error)
        app.add_error_handler(Exception, _unexpected_error)
        app.add_error_handler(falcon.HTTPError, _http_error)
        handlers: dict[tuple[str, str], Callable[..., None]] = {
            ("/healthz", "get"): self.healthz,
            ("/v1/openapi.json", "get"): self.openapi,
            ("/v1/whoami", "get"): self.whoami,
            ("/v1/jobs", "post"): self.register,
            ("/v1/jobs", "get"): self.list_jobs,
            ("/v1/jobs/{job_id}", "get"): self.get_job,
            ("/v1/jobs/{job_id}", "delete"): self.delete_job,
            ("/v1/deliveries", "get"): self.list_deliveries,
            ("/v1/deliveries/{delivery_id}/redeliver", "post"): self.redeliver,
            ("/v1/callbacks", "get"): self.list_callbacks,
            ("/v1/events", "get"): self.feed.events,
            ("/v1/events/stream", "get"): self.feed.stream,
            **SilenceHandlers(self).routes(),
            **AckHandlers(self).routes(),
            **GroupHandlers(self).routes(),
        }
        add_routes(app, self, handlers)
        for template, page_resource in static.routes():
            app.add_route(template, page_resource)
        return app


class SecurityHeaders:
    """Falcon middleware: :data:`SECURITY_HEADERS` on every response; JSON is not cached."""

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        for name, value in SECURITY_HEADERS.items():
            resp.set_header(name, value)
        if resp.get_header("Cache-Control") is None:
            resp.set_header("Cache-Control", "no-store")


R = TypeVar("R")


def _page(rows: list[R], limit: int, position: Callable[[R], Cursor]) -> tuple[list[R], str | None]:
    """A page of ``limit`` rows (``limit + 1`` were read) and the cursor of the next one."""
    if len(rows) <= limit:
        return rows, None
    return rows[:limit], models.encode_cursor(position(rows[limit - 1]))


def merge(job: WatchedJob | None, body: models.JobRegistration) -> dict[str, Any]:
    """The job's fields after registering ``body``: given fields win, ``null`` clears."""
    given = {name: getattr(body, name) for name in JOB_FIELDS if name in body.model_fields_set}
    return watchlist.merge(body.id, job, given)


# --- errors -----------------------------------------------------------------------------


def _send_error(resp: falcon.Response, error: ApiError) -> None:
    resp.status = error.status
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps({"error": error.message, "details": error.details, **error.body})
    for name, value in error.headers.items():
        resp.set_header(name, value)


def _api_error(req: falcon.Request, resp: falcon.Response, ex: ApiError, params: Any) -> None:
    _send_error(resp, ex)


def _http_error(
    req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError, params: Any
) -> None:
    message = ex.title or "error"
    if ex.description:
        message = f"{message}: {ex.description}"
    error = ApiError(ex.status_code, message, headers=dict(ex.headers or {}))
    _send_error(resp, error)


def _store_error(req: falcon.Request, resp: falcon.Response, ex: StoreError, params: Any) -> None:
    log.error("api: %s %s: %s", req.method, req.path, ex)
    _send_error(resp, ApiError(503, "the state store is unavailable; try again"))


def _unexpected_error(
    req: falcon.Request, resp: falcon.Response, ex: Exception, params: Any
) -> None:
    log.error("api: %s %s failed: %s: %s", req.method, req.path, type(ex).__name__, ex)
    _send_error(resp, ApiError(500, "internal error"))


def _serialize_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    message = ex.title or "error"
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps({"error": message, "details": []})
