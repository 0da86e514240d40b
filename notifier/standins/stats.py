"""What the Datasaur stand-in was asked: per request, and in all since the last reset."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class RequestCounts:
    """One GraphQL request's counters, passed to the resolvers as its context."""

    get_job: int = 0
    get_jobs: int = 0
    ids: int = 0
    max_batch: int = 0

    def add(self, n_ids: int, *, batch: bool) -> None:
        """One getJob (``batch`` false) or getJobs field asking about ``n_ids`` jobs."""
        if batch:
            self.get_jobs += 1
        else:
            self.get_job += 1
        self.ids += n_ids
        self.max_batch = max(self.max_batch, n_ids)


@dataclass
class SimulatorStats:
    """Counters of what the simulator was asked."""

    graphql_requests: int = 0
    token_requests: int = 0
    get_job_calls: int = 0
    get_jobs_calls: int = 0
    job_polls: int = 0
    max_batch_size: int = 0
    validation_errors: list[str] = field(default_factory=list)
    requests: list[tuple[float, str | None, int]] = field(default_factory=list)

    def record(
        self, operation: str | None, counts: RequestCounts, invalid: Sequence[str] = ()
    ) -> None:
        """Add one executed request (the caller holds the simulator's lock)."""
        self.get_job_calls += counts.get_job
        self.get_jobs_calls += counts.get_jobs
        self.job_polls += counts.ids
        self.max_batch_size = max(self.max_batch_size, counts.max_batch)
        self.validation_errors.extend(invalid)
        self.requests.append((time.monotonic(), operation, counts.ids))
