"""``GET /v1/events`` and ``GET /v1/events/stream``: the event log, read by cursor.

A page answers at once when an event is there; else, with ``wait``, it is held (a
:class:`~notifier.api.waiters.WaiterSlots` slot, see :mod:`notifier.api.waiters`) until
one matching arrives or ``wait`` passes. A stream is held for as long as its reader
reads: a comment line every :data:`KEEPALIVE` seconds while nothing happens, and cut
when the reader takes nothing for :data:`SLOW_READER` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import falcon

from notifier.api.feed_models import EventsQuery, StreamQuery, parse_cursor
from notifier.api.parsing import ApiError, Detail, detail, validate
from notifier.api.waiters import RETRY_AFTER, FeedWatch, WaiterSlots
from notifier.store import FeedEvent, FeedFilter, FeedPage, Store

KEEPALIVE = 15.0  # seconds between comment lines on an idle stream
SLOW_READER = 30.0  # seconds a stream may hold unread bytes without its reader taking any
STREAM_BUFFER = 64 * 1024  # unread bytes of a stream above which it writes no more
STREAM_PAGE = 100
REPEATABLE = ("type", "label")


def query_values(req: falcon.Request) -> tuple[dict[str, Any], list[Detail]]:
    """The query string: ``type`` and ``label`` as lists (repeated, or ``type`` split at
    commas), every other parameter once."""
    values: dict[str, Any] = {}
    problems = []
    for name, value in req.params.items():
        given = value if isinstance(value, list) else [value]
        if name in REPEATABLE:
            items = [part for v in given for part in (v.split(",") if name == "type" else [v])]
            values[name] = items
        elif len(given) > 1:
            problems.append(detail(name, f"given {len(given)} times; give it once"))
        else:
            values[name] = value
    return values, problems


def document(event: FeedEvent) -> dict[str, Any]:
    """An event as the feed shows it."""
    return {
        "cursor": event.cursor,
        "id": event.id,
        "type": event.type,
        "timestamp": event.payload.get("timestamp"),
        "data": event.payload.get("data") or {},
    }


def sse_frame(event: FeedEvent) -> bytes:
    """One Server-Sent Event: ``id:`` the cursor, ``event:`` the type, ``data:`` the JSON."""
    data = json.dumps(document(event), separators=(",", ":"))
    return f"id: {event.cursor}\nevent: {event.type}\ndata: {data}\n\n".encode()


class Feed:
    """The feed's two handlers, bound to the store."""

    def __init__(self, store: Store, max_waiters: int) -> None:
        self.store = store
        self.slots = WaiterSlots(max_waiters)
        self.watch = FeedWatch(lambda: self.store.event_bounds().head)
        self._watching = False
        self._starting = threading.Lock()  # two first waiters must not both start it

    def poke(self) -> None:
        """This process recorded events: held requests look now."""
        if self._watching:
            self.watch.poke()

    def stop(self) -> None:
        """Release every held request."""
        if self._watching:
            self.watch.stop()

    def _hold(self) -> None:
        """A waiter slot, or 503."""
        if not self.slots.take():
            raise ApiError(
                503,
                f"{self.slots.limit} long-polls and streams are held already (api.max_waiters);"
                " try again",
                headers={"Retry-After": str(RETRY_AFTER)},
            )
        with self._starting:
            if not self._watching:
                self._watching = True
                self.watch.start()

    def _start(self, after: int | Literal["now"] | None) -> int:
        """The cursor to read after: 410 if retention removed events after it."""
        bounds = self.store.event_bounds()
        if after is None:
            return bounds.pruned_through
        if after == "now":
            return bounds.head
        if after < bounds.pruned_through:
            raise ApiError(
                410,
                f"cursor {after} is older than the oldest event kept ({bounds.oldest});"
                " read from oldest_cursor, or without after",
                body={"oldest_cursor": bounds.oldest},
            )
        return after

    def _read(self, after: int, limit: int, where: FeedFilter) -> tuple[FeedPage, int]:
        """A page and the cursor after it (past every event up to the head when the page
        is not full: none of them matched)."""
        page = self.store.read_events(after, limit, where)
        if len(page.events) == limit:
            return page, page.events[-1].cursor
        return page, max(after, page.head)

    def events(self, req: falcon.Request, resp: falcon.Response, caller: object) -> None:
        """``GET /v1/events``."""
        values, problems = query_values(req)
        query = validate(EventsQuery, values, found=problems)
        where = _filter(query)
        after = self._start(None if query.after is None else parse_cursor(query.after))
        page, cursor = self._read(after, query.limit, where)
        if not page.events and query.wait > 0:
            deadline = time.monotonic() + query.wait
            self._hold()
            try:
                while not page.events and (left := deadline - time.monotonic()) > 0:
                    if self.watch.wait_beyond(cursor, left):
                        page, cursor = self._read(cursor, query.limit, where)
            finally:
                self.slots.give_back()
        resp.media = {"events": [document(e) for e in page.events], "next_cursor": cursor}

    def stream(self, req: falcon.Request, resp: falcon.Response, caller: object) -> None:
        """``GET /v1/events/stream``."""
        values, problems = query_values(req)
        resume = req.get_header("Last-Event-ID")
        if resume is not None:
            try:
                parse_cursor(resume.strip())
            except ValueError as exc:
                problems.append(detail("Last-Event-ID", str(exc)))
        query = validate(StreamQuery, values, found=problems)
        given = resume.strip() if resume is not None else query.after
        after = self._start(None if given is None else parse_cursor(given))
        self._hold()
        resp.content_type = "text/event-stream"
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = self._frames(after, _filter(query), Progress(req.env))

    def _frames(self, cursor: int, where: FeedFilter, progress: Progress) -> Iterator[bytes]:
        try:
            yield b"retry: 2000\n\n"
            last_write = time.monotonic()
            while progress.reading():
                if progress.backed_up():
                    self.watch.pause(1.0)  # let the reader catch up
                    continue
                page, cursor = self._read(cursor, STREAM_PAGE, where)
                if page.events:
                    yield b"".join(sse_frame(event) for event in page.events)
                    last_write = time.monotonic()
                    continue
                self.watch.wait_beyond(cursor, min(1.0, KEEPALIVE))
                if time.monotonic() - last_write >= KEEPALIVE:
                    yield b": keep-alive\n\n"
                    last_write = time.monotonic()
        finally:
            self.slots.give_back()


class Progress:
    """How a stream's reader keeps up, from what waitress still holds for it."""

    def __init__(self, environ: dict[str, Any]) -> None:
        check = environ.get("waitress.client_disconnected")
        self._gone = check if callable(check) else (lambda: False)
        self._channel = getattr(check, "__self__", None)  # waitress's HTTPChannel
        self._unread = 0
        self._since = time.monotonic()

    def _pending(self) -> int:
        return int(getattr(self._channel, "total_outbufs_len", 0) or 0)

    def backed_up(self) -> bool:
        """More than :data:`STREAM_BUFFER` bytes wait for the reader."""
        return self._pending() > STREAM_BUFFER

    def reading(self) -> bool:
        """The reader is there and took bytes within :data:`SLOW_READER` seconds."""
        if self._gone():
            return False
        pending, now = self._pending(), time.monotonic()
        if pending == 0 or pending < self._unread:
            self._since = now
        self._unread = pending
        if now - self._since < SLOW_READER:
            return True
        if self._channel is not None:
            self._channel.will_close = True  # cut: the reader took nothing for too long
        return False


def _filter(query: StreamQuery) -> FeedFilter:
    return FeedFilter(tuple(query.type or ()), query.group, query.labels())
