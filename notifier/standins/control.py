"""The simulator's control API (``/_sim/...``, no authentication): what a test, the
demo or a benchmark in another process uses to drive it (see
:mod:`notifier.standins.simulator` for the endpoints)."""

from __future__ import annotations

import random
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from notifier.httpserver import Reply, json_reply, parse_json
from notifier.standins.scripts import progress_steps

if TYPE_CHECKING:
    from notifier.standins.simulator import DatasaurSimulator


class ControlApi:
    """Answers the control requests of one simulator."""

    def __init__(self, sim: DatasaurSimulator) -> None:
        self.sim = sim

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        """Answer one ``/_sim/...`` control request."""
        if not path.startswith("/_sim/"):
            return json_reply(404, {"error": f"no such endpoint: {method} {path}"})
        try:
            return self._control(method, path.removeprefix("/_sim/"), parse_json(body) or {})
        except (ValueError, TypeError, KeyError, AttributeError) as error:
            return json_reply(400, {"error": f"{type(error).__name__}: {error}"})

    def _control(self, method: str, route: str, payload: Any) -> Reply:
        if (method, route) == ("GET", "stats"):
            return json_reply(200, asdict(self.sim.stats()))
        if (method, route) == ("POST", "jobs"):
            for job in payload["jobs"]:
                self._set_job_from(job["id"], job)
            return json_reply(200, {"count": len(payload["jobs"])})
        if (method, route) == ("POST", "workload"):
            return json_reply(200, self._start_workload(payload))
        if (method, route) == ("POST", "faults"):
            self._inject_from(payload)
            return json_reply(200, {"ok": True})
        if (method, route) == ("POST", "broken"):  # {"id", "message"}: a nulled entry
            self.sim.break_job(payload["id"], payload.get("message", "Internal server error"))
            return json_reply(200, {"ok": True})
        if (method, route) == ("POST", "failing"):  # {"id", "message"}: the whole query
            self.sim.fail_job(payload["id"], payload.get("message", "boom"))
            return json_reply(200, {"ok": True})
        if (method, route) == ("POST", "revoke"):
            self.sim.revoke_tokens()
            return json_reply(200, {"ok": True})
        if (method, route) == ("POST", "quirks"):
            self.sim.set_quirks(unknown_ids=payload.get("unknown_ids"), order=payload.get("order"))
            return json_reply(200, {"ok": True})
        if route.startswith("jobs/") and method in ("GET", "PUT"):
            return self._control_job(method, unquote(route.removeprefix("jobs/")), payload)
        return json_reply(404, {"error": f"no such endpoint: {method} /_sim/{route}"})

    def _start_workload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Script ``count`` seeded jobs that progress over time; answer when each ends.

        Body ``{"count", "seed", "duration": [low, high], "kinds": ["linear", "step"],
        "prefix", "noise"}``; the answer lists ``{"id", "kind", "finishes_at"}`` (Unix
        seconds), so a benchmark can measure from the moment a job really ended.
        """
        rng = random.Random(payload.get("seed", 0))
        low, high = (float(value) for value in payload.get("duration", (10.0, 60.0)))
        kinds = list(payload.get("kinds", ("linear", "step")))
        prefix = str(payload.get("prefix", "Workload:"))
        noise = float(payload.get("noise", 3.0))
        started_wall, started = time.time(), time.monotonic()
        jobs, scripts = [], {}
        for index in range(int(payload["count"])):
            kind = kinds[index % len(kinds)]
            duration = rng.uniform(low, high)
            job_id = f"{prefix}{kind}-{index:05d}"
            scripts[job_id] = progress_steps(kind, duration, rng, noise)
            jobs.append({"id": job_id, "kind": kind, "finishes_at": started_wall + duration})
        self.sim.script_jobs(scripts, started)
        return {"jobs": jobs}

    def _control_job(self, method: str, job_id: str, payload: Any) -> Reply:
        if method == "PUT":
            self._set_job_from(job_id, payload)
        job = self.sim.job(job_id)
        return json_reply(404, {"error": "unknown job"}) if job is None else json_reply(200, job)

    def _set_job_from(self, job_id: str, data: dict[str, Any]) -> None:
        self.sim.set_job(
            job_id,
            data.get("status", "QUEUED"),
            data.get("progress", 0),
            errors=data.get("errors"),
            result_id=data.get("resultId"),
            result=data.get("result"),
            additional_data=data.get("additionalData"),
        )

    def _inject_from(self, payload: dict[str, Any]) -> None:
        self.sim.inject(
            payload["kind"],
            int(payload.get("count", 1)),
            retry_after=payload.get("retry_after"),
            delay=float(payload.get("delay", 0)),
            operation=payload.get("operation"),
        )
