"""``wait``'s live progress on a terminal: a bar per job (up to :data:`MAX_BARS`, then
one for the rest) with status, percent and ETA, redrawn by rich at most 4 times a second."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn

from notifier.store import WatchedJob

MAX_BARS = 20


def clock(when: float) -> str:
    """A time of day, UTC: ``10:04:10``."""
    return time.strftime("%H:%M:%S", time.gmtime(when))


class LiveBars:
    """The bars, kept on screen until :meth:`stop` leaves them as the final picture."""

    def __init__(self, stream: TextIO) -> None:
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[eta]}"),
            console=Console(file=stream),
            refresh_per_second=4,
        )
        self.tasks: dict[str, TaskID] = {}
        self.progress.start()

    def update(self, jobs: Sequence[tuple[WatchedJob, bool]]) -> None:
        """Show each job's latest row (``True``: Datasaur does not know it)."""
        shown, rest = jobs[:MAX_BARS], jobs[MAX_BARS:]
        for job, unknown in shown:
            status = "NOT FOUND" if unknown else (job.status or "waiting")
            if job.state in ("expired", "unwatched"):
                status = job.state.upper()
            eta = "" if job.eta is None else "eta " + clock(job.eta)
            self._bar(job.id, job.progress or 0, status, eta)
        if rest:
            ended = sum(job.state != "watching" for job, _ in rest)
            self._bar(f"{len(rest)} more", 100 * ended // len(rest), f"{ended} ended", "")

    def _bar(self, name: str, completed: int, status: str, eta: str) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(name, total=100, status=status, eta=eta)
        self.progress.update(self.tasks[name], completed=completed, status=status, eta=eta)

    def stop(self) -> None:
        """Draw once more and leave the bars in place."""
        self.progress.stop()
