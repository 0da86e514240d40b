"""A Python client of the notifier's HTTP API, for pipelines: register jobs and groups,
follow the event feed, wait for jobs or a group to end.

    from notifier.client import Client
    client = Client("http://127.0.0.1:8765", token)
    client.watch("ExportQueue:4a6c", group="nightly-42")
    final = client.wait(group="nightly-42", timeout=7200)

Every call the client makes is idempotent (registering the same job again, sealing a
sealed group, reading), so each is retried on a connection error or a ``503`` -- at most
:data:`ATTEMPTS` times, with a growing pause (or the server's ``Retry-After``) -- and
never on any other answer: a ``4xx`` raises at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import quote

import requests

ATTEMPTS = 4  # tries per call on connection errors and 503
BACKOFF = 0.25  # seconds before the first retry, doubled each time
MAX_PAUSE = 5.0  # the longest pause between tries, whatever Retry-After says
ENDED = frozenset({"done", "expired", "unwatched"})
TERMINAL_EVENTS = ("job.delivered", "job.failed", "job.expired")
GROUP_ENDED = frozenset({"completed", "failed"})


class NotifierError(Exception):
    """An error answer (``status``, ``message``, a 422's ``details``) or a failed call."""

    def __init__(
        self, message: str, status: int | None = None, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message if status is None else f"{status}: {message}")
        self.status = status
        self.message = message
        self.details = details or []


class Unauthorized(NotifierError):
    """401: the token is missing or wrong."""


class Forbidden(NotifierError):
    """403: the token may only read."""


class NotFound(NotifierError):
    """404: no such job, group or delivery."""


class Conflict(NotifierError):
    """409: e.g. joining a group that has ended."""


class JobFailed(NotifierError):
    """:meth:`Client.wait`: a job FAILED or expired, or the group failed; ``final`` is
    what :meth:`Client.wait` would have returned."""

    def __init__(self, message: str, final: dict[str, Any]) -> None:
        super().__init__(message)
        self.final = final


class Timeout(NotifierError):
    """:meth:`Client.wait`: the timeout passed first."""


_ERRORS: dict[int, type[NotifierError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


def _path(value: str) -> str:
    return quote(value, safe="")


class Client:
    """The API at ``base_url`` with a bearer ``token``; ``timeout`` bounds each request
    (a long-poll gets its ``wait`` on top)."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:  # never the token
        return f"Client({self.base_url!r})"

    def close(self) -> None:
        """Close the connections kept alive."""
        self._session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- requests ----------------------------------------------------------------

    def _call(
        self, method: str, path: str, *, json: Any = None, params: Any = None, wait: float = 0.0
    ) -> Any:
        """One call, retried on connection errors and 503; its JSON answer."""
        url = self.base_url + path
        for attempt in range(1, ATTEMPTS + 1):
            pause = min(MAX_PAUSE, BACKOFF * 2 ** (attempt - 1))
            try:
                answer = self._session.request(
                    method, url, json=json, params=params, timeout=self.timeout + wait
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if attempt == ATTEMPTS:
                    raise NotifierError(
                        f"cannot reach {self.base_url}: {type(exc).__name__}"
                    ) from None
            else:
                if answer.status_code != 503 or attempt == ATTEMPTS:
                    return _answer(answer)
                pause = _retry_after(answer, pause)
            time.sleep(pause)
        raise AssertionError("unreachable")  # pragma: no cover

    # --- jobs --------------------------------------------------------------------

    def watch(
        self,
        job_id: str,
        *,
        name: str | None = None,
        notify: list[str] | None = None,
        on_status: list[str] | None = None,
        callback_url: str | None = None,
        group: str | None = None,
        labels: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
        deadline: str | None = None,
    ) -> dict[str, Any]:
        """Watch a job (or update the fields given of a known one); the job."""
        fields = {
            "name": name, "notify": notify, "on_status": on_status, "callback_url": callback_url,
            "group": group, "labels": labels, "metadata": metadata, "deadline": deadline,
        }  # fmt: skip
        body = {"id": job_id, **{k: v for k, v in fields.items() if v is not None}}
        job: dict[str, Any] = self._call("POST", "/v1/jobs", json=body)["job"]
        return job

    def job(self, job_id: str) -> dict[str, Any]:
        """A job with its deliveries."""
        job: dict[str, Any] = self._call("GET", f"/v1/jobs/{_path(job_id)}")["job"]
        return job

    def jobs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every job matching ``filters`` (``state``, ``group``, ``label``...), page by page."""
        params = dict(filters)
        while True:
            page = self._call("GET", "/v1/jobs", params=params)
            yield from page["jobs"]
            if page.get("next_cursor") is None:
                return
            params["cursor"] = page["next_cursor"]

    def unwatch(self, job_id: str) -> dict[str, Any]:
        """Stop watching a job (its pending deliveries are still sent); the job."""
        job: dict[str, Any] = self._call("DELETE", f"/v1/jobs/{_path(job_id)}")["job"]
        return job

    # --- groups ------------------------------------------------------------------

    def put_group(self, group_id: str, **fields: Any) -> dict[str, Any]:
        """Create or update a group (``name``, ``notify``, ``expect``, ``sealed``...)."""
        group: dict[str, Any] = self._call("PUT", f"/v1/groups/{_path(group_id)}", json=fields)[
            "group"
        ]
        return group

    def seal(self, group_id: str) -> dict[str, Any]:
        """Seal a group: it gains no more members and can end."""
        group: dict[str, Any] = self._call("POST", f"/v1/groups/{_path(group_id)}/seal")["group"]
        return group

    def group(self, group_id: str) -> dict[str, Any]:
        """A group with its members."""
        group: dict[str, Any] = self._call("GET", f"/v1/groups/{_path(group_id)}")["group"]
        return group

    # --- the feed ----------------------------------------------------------------

    def events(
        self,
        after: int | str | None = None,
        types: Iterable[str] | None = None,
        group: str | None = None,
        wait: float = 30.0,
    ) -> Iterator[dict[str, Any]]:
        """Every event after cursor ``after`` (None: the oldest kept; ``"now"``: only new
        ones), in order, following the feed by long-polls until the iterator is closed."""
        params: dict[str, Any] = {"wait": f"{wait:g}s", "limit": 100}
        if types is not None:
            params["type"] = ",".join(types)
        if group is not None:
            params["group"] = group
        cursor = after
        while True:
            if cursor is not None:
                params["after"] = cursor
            page = self._call("GET", "/v1/events", params=params, wait=wait)
            yield from page["events"]
            cursor = page["next_cursor"]

    def wait(
        self,
        job_ids: Iterable[str] | None = None,
        group: str | None = None,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Block until every job in ``job_ids`` has ended (``{"jobs": [...]}``), or the
        group has (``{"group": {...}}``). Raises :class:`JobFailed` if any job FAILED or
        expired (the group failed), :class:`Timeout` after ``timeout`` seconds."""
        ids = list(job_ids or [])
        if bool(ids) == (group is not None):
            raise ValueError("wait for job ids or for a group, not both and not neither")
        deadline = None if timeout is None else time.monotonic() + timeout
        cursor: Any = self._call("GET", "/v1/events", params={"after": "now"})["next_cursor"]
        while True:
            final = self._final(ids, group)
            if final is not None:
                return final
            left = 30.0 if deadline is None else deadline - time.monotonic()
            if left <= 0:
                raise Timeout(f"not ended within {timeout:g}s")
            params = {"after": cursor, "wait": f"{min(30.0, max(left, 0.1)):.3f}s"}
            cursor = self._call("GET", "/v1/events", params=params, wait=min(30.0, left))[
                "next_cursor"
            ]

    def _final(self, ids: list[str], group: str | None) -> dict[str, Any] | None:
        """The final state if everything waited for has ended (JobFailed if badly)."""
        if group is not None:
            found = self.group(group)
            if found.get("state") not in GROUP_ENDED:
                return None
            if found["state"] == "failed":
                raise JobFailed(f"group {group} failed", {"group": found})
            return {"group": found}
        jobs = [self.job(job_id) for job_id in ids]
        if any(job["state"] not in ENDED for job in jobs):
            return None
        bad = [j["id"] for j in jobs if j["state"] != "done" or j.get("status") != "DELIVERED"]
        if bad:
            raise JobFailed(f"not delivered: {', '.join(bad)}", {"jobs": jobs})
        return {"jobs": jobs}


def _answer(answer: requests.Response) -> Any:
    """The JSON of a 2xx answer; else the matching :class:`NotifierError`."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.ok:
        return body
    message = body.get("error") if isinstance(body, dict) else None
    details = body.get("details") if isinstance(body, dict) else None
    kind = _ERRORS.get(answer.status_code, NotifierError)
    raise kind(message or answer.reason or "error", answer.status_code, details or [])


def _retry_after(answer: requests.Response, default: float) -> float:
    try:
        return min(MAX_PAUSE, max(0.0, float(answer.headers.get("Retry-After", default))))
    except ValueError:
        return default
