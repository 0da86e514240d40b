"""Issue 23, quiet hours, end to end on both stores and every channel: a window that is
open now, in a zone whose clocks jump forward an hour inside it, holds job.delivered
until the window's end by the wall clock (not an hour later) and lets job.failed
(``except_events``) through at once.

The zone is a TZif file of the test's own (tests/support/tzfile.py), found by the daemon
through ``PYTHONTZPATH``.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.support.daemon import DaemonProcess, cli
from tests.support.smtp import SmtpSink
from tests.support.tzfile import write_zone
from tests.support.waiting import wait_until
from tests.test_silences_e2e import every_channel, store_config  # noqa: F401 (fixture)

Factory = Callable[..., DaemonProcess]
ENDS = "ExportQueue:00000023-0000-4000-8000-0000000000a1"
FAILS = "ExportQueue:00000023-0000-4000-8000-0000000000a2"
HOLD = 12  # seconds from now until the window closes


def wall(instant: float, offset: int) -> str:
    """HH:MM at UTC offset ``offset`` seconds."""
    return dt.datetime.fromtimestamp(instant + offset, dt.UTC).strftime("%H:%M")


def delivered(config: Path) -> dict[tuple[str, str], float]:
    result = cli(config, "deliveries", "--json")
    assert result.returncode == 0, result.stderr
    return {
        (d["callback"], d["event"]): dt.datetime.fromisoformat(d["delivered_at"]).timestamp()
        for d in json.loads(result.stdout)["deliveries"]
        if d["state"] == "delivered"
    }


def test_quiet_hours_hold_until_the_wall_clock_end_across_a_dst_change_but_not_failures(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    store_config: Callable[..., dict[str, Any]],  # noqa: F811
    tmp_path: Path,
) -> None:
    now = int(time.time())
    closes = now + HOLD
    # Clocks go forward one hour (and a few seconds, so that the close is on a minute)
    # three seconds from now: inside the window, which opened a minute ago.
    after = 3600 + (-(closes + 3600)) % 60
    write_zone(tmp_path / "zones", "Test/Shift", now + 3, 0, after)
    quiet = {"from": wall(now - 60, 0), "to": wall(closes, after), "timezone": "Test/Shift",
             "except_events": ["job.failed"]}  # fmt: skip
    channels = {name: {**settings, "quiet_hours": quiet}
                for name, settings in every_channel(receiver, smtp).items()}  # fmt: skip
    simulator.set_job(ENDS, "IN_PROGRESS", 10)
    simulator.set_job(FAILS, "IN_PROGRESS", 10)
    config = store_config(simulator, callbacks=channels, jobs=[{"id": ENDS}, {"id": FAILS}])
    daemon = daemon_factory(config, env={"PYTHONTZPATH": str(tmp_path / "zones")})
    simulator.set_job(ENDS, "DELIVERED", 100)
    simulator.set_job(FAILS, "FAILED", 50)

    failures = {(name, "job.failed") for name in channels}
    wait_until(lambda: failures <= set(delivered(daemon.config)), timeout=10, message=daemon.output)
    assert time.time() < closes, "job.failed should not have waited for the window"
    assert not {(name, "job.delivered") for name in channels} & set(delivered(daemon.config))

    ended = {(name, "job.delivered") for name in channels}
    times = wait_until(
        lambda: (got := delivered(daemon.config)) and ended <= set(got) and got,
        timeout=HOLD + 15,
        message=daemon.output,
    )
    for key in ended:
        assert times[key] >= closes, (key, times[key] - closes)
    assert len(smtp.messages) == 2
    assert sorted(h.path for h in receiver.received) == ["/apprise"] * 2 + ["/hook"] * 2
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output
