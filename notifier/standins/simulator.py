"""A Datasaur stand-in on a real local HTTP server (tests, ``demo``, ``simulate``, benchmarks).

Endpoints:

- ``POST /api/oauth/token`` (form: client_id, client_secret, grant_type=client_credentials)
  answers ``{"access_token", "token_type": "bearer", "expires_in"}``; wrong credentials get
  HTTP 401 ``{"error": "invalid_client"}``.
- ``POST /graphql`` with ``Authorization: Bearer <token>``: every query is parsed and validated
  against the packaged schema slice (``datasaur_schema.graphql``) and executed by graphql-core.
  Invalid queries get HTTP 200 with ``errors`` and no ``data``, and are recorded in
  ``stats().validation_errors``. A missing, unknown or expired token gets
  ``auth_failure_status`` (401 unless told otherwise).

Control API (no authentication), for driving the simulator from another process:

- ``GET /_sim/stats``: the :class:`SimulatorStats` as JSON.
- ``GET /_sim/jobs/<id>``: the job as JSON, 404 if unknown.
- ``PUT /_sim/jobs/<id>`` body ``{"status", "progress", "errors", "resultId", "result",
  "additionalData"}``:
  :meth:`DatasaurSimulator.set_job`; answers the job.
- ``POST /_sim/jobs`` body ``{"jobs": [{"id", "status", "progress", ...}, ...]}``: bulk set.
- ``POST /_sim/workload`` body ``{"count", "seed", "duration": [low, high], "kinds",
  "prefix", "noise"}``: seeded jobs that progress over time (see :func:`progress_steps`);
  answers ``{"jobs": [{"id", "kind", "finishes_at"}]}``.
- ``POST /_sim/faults`` body ``{"kind", "count", "retry_after", "delay", "operation"}``:
  :meth:`DatasaurSimulator.inject`.
- ``POST /_sim/broken`` body ``{"id", "message"}``: :meth:`DatasaurSimulator.break_job`;
  ``POST /_sim/failing`` (same body): :meth:`DatasaurSimulator.fail_job`;
  ``POST /_sim/revoke``: :meth:`DatasaurSimulator.revoke_tokens`.
- ``POST /_sim/quirks`` body ``{"unknown_ids": "null"|"omit", "order": "asked"|"reversed"}``:
  :meth:`DatasaurSimulator.set_quirks`.

It answers like Datasaur's server: ``"extensions": {}`` on every answer, ``errors: []``
on a job without errors, ISO-8601 timestamps with milliseconds and ``Z``, and a refused
token as ``{"errors": [{"message": "Unauthorized", "extensions": {"type":
"AuthenticationError"}}], "data": null}``. ``legacy_schema`` serves the ``Job`` type of
servers older than 2022-08.

Bad control requests get HTTP 400 ``{"error": "..."}``.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from graphql import (
    ExecutionResult,
    GraphQLError,
    GraphQLObjectType,
    GraphQLResolveInfo,
    execute_sync,
)

from notifier.httpserver import LocalHTTPServer, QuietHandler, Reply, json_reply, parse_json
from notifier.standins.control import ControlApi
from notifier.standins.faults import FAULT_KINDS, Fault, fault_reply
from notifier.standins.graphql_schema import (
    Rejected,
    error_payload,
    job_schema,
    prepare,
    rejected_payload,
    unauthorized_payload,
)
from notifier.standins.scripts import Step, auto_steps
from notifier.standins.stats import RequestCounts, SimulatorStats
from notifier.standins.tokens import TokenEndpoint

JOB_STATUSES = frozenset({"NONE", "QUEUED", "IN_PROGRESS", "FAILED", "DELIVERED"})
UNKNOWN_IDS = ("null", "omit")  # how getJobs answers an unknown id
ORDERS = ("asked", "reversed")  # the order getJobs lists the jobs in

JobDict = dict[str, Any]


@dataclass
class _Timeline:
    start: float
    steps: list[Step]


class _SimulatorHandler(QuietHandler):
    @property
    def sim(self) -> DatasaurSimulator:
        assert isinstance(self.owner, DatasaurSimulator)
        return self.owner

    def do_POST(self) -> None:  # noqa: N802 (http.server hook)
        """GraphQL, token and control endpoints."""
        body = self.read_body()
        path = self.path.partition("?")[0]
        if path == "/graphql":
            self.reply(self.sim.handle_graphql(self.headers.get("Authorization"), body))
        elif path == "/api/oauth/token":
            self.reply(self.sim.handle_token(body))
        else:
            self.reply(self.sim.control.handle("POST", path, body))

    def do_GET(self) -> None:  # noqa: N802 (http.server hook)
        """Control endpoints."""
        self.reply(self.sim.control.handle("GET", self.path.partition("?")[0], b""))

    def do_PUT(self) -> None:  # noqa: N802 (http.server hook)
        """Control endpoints."""
        body = self.read_body()
        self.reply(self.sim.control.handle("PUT", self.path.partition("?")[0], body))


class DatasaurSimulator(LocalHTTPServer):
    """Datasaur's token endpoint and getJob/getJobs GraphQL API, with job control and faults."""

    handler_class = _SimulatorHandler

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        static_token: str | None = None,
        token_ttl: float = 3600,
        auto_jobs: bool = False,
        auto_finish_after: float = 20.0,
        auth_failure_status: int = 401,
        legacy_schema: bool = False,
        extra_statuses: Sequence[str] = (),
        unknown_ids: str = "null",
        order: str = "asked",
        rejection_status: int = 200,
    ) -> None:
        """``legacy_schema``: serve the ``Job`` type of servers older than 2022-08;
        ``rejection_status``: the HTTP status of an answer to a query that does not
        validate (200; Apollo Server 4 says 400);
        ``extra_statuses``: ``JobStatus`` values beyond today's; ``unknown_ids`` and
        ``order``: see :meth:`set_quirks`. A refused token is answered Datasaur's way
        (``Unauthorized``, ``AuthenticationError``) with ``auth_failure_status``."""
        super().__init__(host, port)
        self._legacy_schema = legacy_schema
        self._schema = job_schema(legacy_schema, tuple(extra_statuses))
        self._statuses = JOB_STATUSES | set(extra_statuses)
        self.set_quirks(unknown_ids=unknown_ids, order=order)
        self.tokens = TokenEndpoint(client_id, client_secret, static_token, token_ttl)
        self._auto_jobs = auto_jobs
        self._auto_finish_after = auto_finish_after
        self._auth_failure_status = auth_failure_status
        self._rejection_status = rejection_status
        self.control = ControlApi(self)
        self._lock = threading.Lock()
        self._jobs: dict[str, JobDict] = {}
        self._timelines: dict[str, _Timeline] = {}
        self._faults: deque[Fault] = deque()
        self._failing: dict[str, str] = {}
        self._broken: dict[str, str] = {}
        self._stats = SimulatorStats()
        self._root = {"getJob": self._resolve_get_job, "getJobs": self._resolve_get_jobs}

    @property
    def legacy_schema(self) -> bool:
        """Whether it serves the schema of servers older than 2022-08."""
        return self._legacy_schema

    @property
    def job_fields(self) -> list[str]:
        """The fields of its ``Job`` type."""
        job_type = self._schema.get_type("Job")
        assert isinstance(job_type, GraphQLObjectType)
        return list(job_type.fields)

    @property
    def graphql_url(self) -> str:
        """The GraphQL endpoint."""
        return self.url + "/graphql"

    @property
    def token_url(self) -> str:
        """The OAuth client-credentials token endpoint."""
        return self.url + "/api/oauth/token"

    # Jobs

    def set_job(
        self,
        job_id: str,
        status: str = "QUEUED",
        progress: int = 0,
        *,
        errors: list[dict[str, Any]] | None = None,
        result_id: str | None = None,
        result: Any = None,
        additional_data: dict[str, Any] | None = None,
    ) -> None:
        """Create or update a job (cancels its script, if any); ``additional_data``:
        its ``additionalData`` (``{"automationActivityId": ...}``), else null."""
        self._check_status(status)
        with self._lock:
            self._timelines.pop(job_id, None)
            self._store(
                job_id,
                status=status,
                progress=progress,
                errors=errors,
                resultId=result_id,
                result=result,
                additionalData=additional_data,
            )

    def remove_job(self, job_id: str) -> None:
        """Forget a job (and its script)."""
        with self._lock:
            self._jobs.pop(job_id, None)
            self._timelines.pop(job_id, None)

    def script_job(self, job_id: str, steps: list[Step]) -> None:
        """From now, ``offset_seconds`` after this call the job has ``(status, progress)``.

        Before the first step is due the job keeps its current state (or stays unknown).
        A FAILED step adds a generic error if the job has none.
        """
        self.script_jobs({job_id: steps})

    def job(self, job_id: str) -> JobDict | None:
        """A copy of the job as getJob would show it, or None."""
        with self._lock:
            self._advance(job_id, time.monotonic())
            return copy.deepcopy(self._jobs.get(job_id))

    # Faults

    def inject(
        self,
        kind: str,
        count: int = 1,
        *,
        retry_after: str | None = None,
        delay: float = 0,
        operation: str | None = None,
    ) -> None:
        """Queue ``count`` faults; each GraphQL request consumes one, oldest first (with
        ``operation``: only requests of that ``operationName``, e.g. "GetJobResults")."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {sorted(FAULT_KINDS)}")
        with self._lock:
            self._faults.extend([Fault(kind, retry_after, delay, operation)] * count)

    def inject_token(self, kind: str, count: int = 1) -> None:
        """Queue ``count`` faults for the token endpoint ("http_500" or "http_401")."""
        self.tokens.inject(kind, count)

    def fail_job(self, job_id: str, message: str = "boom") -> None:
        """Make every query that asks for ``job_id`` answer a GraphQL error."""
        with self._lock:
            self._failing[job_id] = message

    def break_job(self, job_id: str, message: str = "Internal server error") -> None:
        """Make ``job_id``'s getJobs entry ``null``, with an error whose ``path`` points
        at it (``["result", <index>, "id"]``); the rest of the answer stays."""
        with self._lock:
            self._broken[job_id] = message

    def set_quirks(self, *, unknown_ids: str | None = None, order: str | None = None) -> None:
        """How getJobs answers: ``unknown_ids`` "null" (an entry ``null``) or "omit" (no
        entry); ``order`` "asked" or "reversed"."""
        if unknown_ids is not None:
            _check_choice("unknown_ids", unknown_ids, UNKNOWN_IDS)
            self._unknown_ids = unknown_ids
        if order is not None:
            _check_choice("order", order, ORDERS)
            self._order = order

    def clear_faults(self) -> None:
        """Drop queued faults, token faults, failing and broken jobs."""
        with self._lock:
            self._faults.clear()
        self.tokens.clear_faults()
        with self._lock:
            self._failing.clear()
            self._broken.clear()

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (the static token stays valid)."""
        self.tokens.revoke()

    # Stats

    def stats(self) -> SimulatorStats:
        """A snapshot of the counters."""
        with self._lock:
            return replace(
                self._stats,
                validation_errors=list(self._stats.validation_errors),
                requests=list(self._stats.requests),
            )

    def reset_stats(self) -> None:
        """Zero the counters."""
        with self._lock:
            self._stats = SimulatorStats()

    # Request handling (called by the HTTP handler threads)

    def handle_graphql(self, authorization: str | None, body: bytes) -> Reply | None:
        """Answer one ``POST /graphql``; None means: close without answering."""
        payload = parse_json(body)
        operation = payload.get("operationName") if isinstance(payload, dict) else None
        fault = self._next_fault(operation)
        if fault is not None and fault.kind == "hang":
            if self.pause(fault.delay):
                return None
        elif fault is not None:
            self._record(operation, RequestCounts())
            return fault_reply(fault)
        if not self.tokens.accepts(authorization):
            self._record(operation, RequestCounts())
            return json_reply(self._auth_failure_status, unauthorized_payload())
        return self._execute(payload, operation)

    def handle_token(self, body: bytes) -> Reply:
        """Answer one ``POST /api/oauth/token``."""
        with self._lock:
            self._stats.token_requests += 1
        return self.tokens.answer(body)

    def script_jobs(self, scripts: dict[str, list[Step]], started: float | None = None) -> None:
        """:meth:`script_job` for many jobs, their timelines starting at one moment."""
        for steps in scripts.values():
            for _, status, _ in steps:
                self._check_status(status)
        started = time.monotonic() if started is None else started
        with self._lock:
            for job_id, steps in scripts.items():
                self._timelines[job_id] = _Timeline(started, sorted(steps))
                self._advance(job_id, started)

    # Internals

    def _execute(self, payload: Any, operation: str | None) -> Reply:
        query = payload.get("query") if isinstance(payload, dict) else None
        if not isinstance(query, str):
            self._record(operation, RequestCounts())
            return json_reply(400, error_payload("Expected a JSON body with a 'query' string"))
        prepared = prepare(self._schema, query)
        if isinstance(prepared, Rejected):
            self._record(operation, RequestCounts(), [error.message for error in prepared.errors])
            return json_reply(self._rejection_status, rejected_payload(prepared))
        counts = RequestCounts()
        result = execute_sync(
            self._schema,
            prepared,
            root_value=self._root,
            context_value=counts,
            variable_values=payload.get("variables") or {},
            operation_name=operation,
        )
        self._record(operation, counts, _request_errors(result))
        return json_reply(200, {**result.formatted, "extensions": {}})

    def _resolve_get_job(self, info: GraphQLResolveInfo[Any], **args: Any) -> JobDict | None:
        info.context.add(1, batch=False)
        job_id: str = args["jobId"]
        with self._lock:
            self._raise_if_failing([job_id])
            return self._lookup(job_id, time.monotonic())

    def _resolve_get_jobs(self, info: GraphQLResolveInfo[Any], **args: Any) -> list[JobDict | None]:
        job_ids: list[str] = args["jobIds"]
        info.context.add(len(job_ids), batch=True)
        now = time.monotonic()
        with self._lock:
            self._raise_if_failing(job_ids)
            jobs = [self._entry(job_id, now) for job_id in job_ids]
        if self._unknown_ids == "omit":
            jobs = [job for job in jobs if job is not None]
        return jobs[::-1] if self._order == "reversed" else jobs

    def _entry(self, job_id: str, now: float) -> JobDict | None:
        """One getJobs entry (lock held); a broken job's fails to resolve its ``id``."""
        job = self._lookup(job_id, now)
        message = self._broken.get(job_id)
        if message is None or job is None:
            return job

        def fail(_info: GraphQLResolveInfo[Any]) -> None:
            raise GraphQLError(message, extensions={"code": "INTERNAL_SERVER_ERROR"})

        return {**job, "id": fail}

    def _raise_if_failing(self, job_ids: list[str]) -> None:
        for job_id in job_ids:
            if job_id in self._failing:
                raise GraphQLError(
                    self._failing[job_id], extensions={"code": "INTERNAL_SERVER_ERROR"}
                )

    def _lookup(self, job_id: str, now: float) -> JobDict | None:
        """The job as of ``now`` (lock held); starts an automatic script for new ids."""
        if self._auto_jobs and job_id not in self._jobs and job_id not in self._timelines:
            steps = auto_steps(job_id, self._auto_finish_after)
            self._timelines[job_id] = _Timeline(now, steps)
        self._advance(job_id, now)
        job = self._jobs.get(job_id)
        return None if job is None else dict(job)

    def _advance(self, job_id: str, now: float) -> None:
        """Apply the script's latest due step (lock held)."""
        timeline = self._timelines.get(job_id)
        if timeline is None:
            return
        due: Step | None = None
        while timeline.steps and timeline.start + timeline.steps[0][0] <= now:
            due = timeline.steps.pop(0)
        if not timeline.steps:
            del self._timelines[job_id]
        if due is not None:
            self._store(job_id, status=due[1], progress=due[2])
            self._add_failure_error(job_id)

    def _add_failure_error(self, job_id: str) -> None:
        job = self._jobs[job_id]
        if job["status"] == "FAILED" and not job["errors"]:
            error = {"id": f"{job_id}:error", "stack": "Error: simulated failure", "args": {}}
            job["errors"] = [error]

    def _store(self, job_id: str, **fields: Any) -> None:
        """Create or update a job record (lock held)."""
        now = _iso_now()
        job = self._jobs.get(job_id)
        if job is None:
            job = {"id": job_id, "createdAt": now, "errors": [], "resultId": None}
            job |= {"result": None, "additionalData": None}
            self._jobs[job_id] = job
        job.update(fields, updatedAt=now)
        if job["errors"] is None:
            job["errors"] = []

    def _check_status(self, status: str) -> None:
        if status not in self._statuses:
            expected = sorted(self._statuses)
            raise ValueError(f"unknown job status {status!r}; expected one of {expected}")

    def _next_fault(self, operation: Any) -> Fault | None:
        with self._lock:
            self._stats.graphql_requests += 1
            for fault in self._faults:
                if fault.operation is None or fault.operation == operation:
                    self._faults.remove(fault)
                    return fault
            return None

    def _record(
        self, operation: str | None, counts: RequestCounts, invalid: Sequence[str] = ()
    ) -> None:
        with self._lock:
            self._stats.record(operation, counts, invalid)


def _request_errors(result: ExecutionResult) -> list[str]:
    """Errors not tied to a field: bad variables, unknown operation name."""
    return [error.message for error in result.errors or [] if error.path is None]


def _check_choice(name: str, value: str, choices: Sequence[str]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
