"""``datasaur-notifier simulate``: the Datasaur stand-in in the foreground."""

from __future__ import annotations

import signal
from collections.abc import Callable

from notifier.standins.simulator import DatasaurSimulator


def _print_now(line: str) -> None:
    print(line, flush=True)


def serve(
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    client_id: str | None = None,
    client_secret: str | None = None,
    static_token: str | None = None,
    auto_jobs: bool = True,
    auto_finish_after: float = 20.0,
    legacy_schema: bool = False,
    announce: Callable[[str], None] = _print_now,
) -> None:
    """Run a simulator until Ctrl-C or SIGTERM (for ``datasaur-notifier simulate``)."""
    sim = DatasaurSimulator(
        host,
        port,
        client_id=client_id,
        client_secret=client_secret,
        static_token=static_token,
        auto_jobs=auto_jobs,
        auto_finish_after=auto_finish_after,
        legacy_schema=legacy_schema,
    )
    signal.signal(signal.SIGTERM, lambda *_: sim.request_stop())
    with sim:
        for line in describe(sim, any_credentials=client_id is None):
            announce(line)
        try:
            sim.wait()
        except KeyboardInterrupt:
            announce("Stopping.")


def describe(sim: DatasaurSimulator, *, any_credentials: bool) -> list[str]:
    """Lines telling a person where the simulator listens."""
    credentials = "any non-empty" if any_credentials else "only the configured"
    schema = "servers before 2022-08: Job has only" if sim.legacy_schema else "today's"
    return [
        f"Datasaur simulator listening on {sim.url}",
        f"  schema:    {schema} ({' '.join(sim.job_fields)})",
        f"  api_url:   {sim.url}  (GraphQL at {sim.graphql_url})",
        f"  token_url: {sim.token_url}  ({credentials} client_id/client_secret)",
        f"  control:   {sim.url}/_sim/stats, {sim.url}/_sim/jobs/<id>, {sim.url}/_sim/faults",
        "Press Ctrl-C to stop.",
    ]
