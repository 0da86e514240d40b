"""Issue 23 end to end, on both stores and every channel (webhook, email, Apprise):
a silence holds a callback's deliveries and releases them when it is expired (the API's
shapes and refusals, the metric); quiet hours hold job.delivered until the window's end
across a daylight-saving change and let job.failed through.

The daemon runs as a subprocess against the Datasaur stand-in, a webhook receiver and an
SMTP sink; waits are on observable effects with deadlines.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, email, webhook
from tests.support.daemon import DaemonProcess, cli, write_config
from tests.support.smtp import SmtpSink, free_port
from tests.support.tzfile import write_zone
from tests.support.waiting import wait_until
from tests.test_api_e2e import READ_TOKEN, WRITE_TOKEN, Client, api_section
from tests.test_operator_cli import scrape

Factory = Callable[..., DaemonProcess]
JOB = "ExportQueue:00000023-0000-4000-8000-000000000001"
OTHER = "ExportQueue:00000023-0000-4000-8000-000000000002"
CALLBACKS = ("hook", "mail", "chat")


@pytest.fixture(params=["sqlite", "postgres"])
def store_config(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., dict[str, Any]]:
    """``store_config(sim, **sections)``: a base config on the parametrised store."""
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None

    def make(sim: DatasaurSimulator, **sections: Any) -> dict[str, Any]:
        config = base_config(sim, tmp_path, **sections)
        if url is not None:
            del config["state_path"]
            config["state_url"] = url
            config["cluster"] = {"lease": "6s"}
        return config

    return make


def outbox(config: Path) -> list[dict[str, Any]]:
    result = cli(config, "deliveries", "--json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout)["deliveries"])


def states(config: Path) -> dict[str, tuple[str, str | None]]:
    return {d["callback"]: (d["state"], d["silence_id"]) for d in outbox(config)}


def every_channel(receiver: WebhookReceiver, smtp: SmtpSink) -> dict[str, Any]:
    chat = "json://" + receiver.url.removeprefix("http://") + "/apprise"
    return {
        "hook": webhook(receiver),
        "mail": email(smtp),
        "chat": {"type": "apprise", "url": chat},
    }


def test_a_silence_holds_every_channel_until_it_is_expired_and_nothing_is_lost(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    smtp: SmtpSink,
    daemon_factory: Factory,
    store_config: Callable[..., dict[str, Any]],
) -> None:
    simulator.set_job(JOB, "IN_PROGRESS", 10)
    config = store_config(
        simulator,
        callbacks=every_channel(receiver, smtp),
        jobs=[{"id": JOB}],
        # Held longer than give_up_after: waiting must not make the deliveries die.
        delivery={"timeout": "2s", "initial_backoff": "0.1s", "max_backoff": "1s",
                  "give_up_after": "2s"},
    )  # fmt: skip
    port = free_port()
    daemon = daemon_factory(config, args=("--metrics-port", str(port)))
    ids = {}
    for name in CALLBACKS:
        added = cli(daemon.config, "silence", "add", "--callback", name, "--for", "1h",
                    "--comment", f"redeploying {name}")  # fmt: skip
        assert added.returncode == 0, added.stderr
        ids[name] = added.stdout.split()[1].rstrip(":")
    listed = cli(daemon.config, "silence", "list", "--json")
    documents = {s["callback"]: s for s in json.loads(listed.stdout)["silences"]}
    assert set(documents) == set(CALLBACKS)
    assert set(documents["hook"]) == {"id", "callback", "starts_at", "ends_at", "author",
                                      "comment"}  # fmt: skip
    assert (documents["hook"]["author"], documents["hook"]["comment"]) == (
        "cli",
        "redeploying hook",
    )
    table = cli(daemon.config, "silence", "list").stdout
    assert ids["hook"] in table and "active" in table and "callback hook" in table

    simulator.set_job(JOB, "DELIVERED", 100)
    wait_until(
        lambda: states(daemon.config) == {n: ("silenced", ids[n]) for n in CALLBACKS},
        timeout=20,
        message=daemon.output,
    )
    text = cli(daemon.config, "deliveries").stdout
    assert f"silence {ids['mail']}" in text
    held = scrape(port)["notifier_silenced_deliveries"]
    assert {labels[0][1]: value for labels, value in held.items()} == dict.fromkeys(CALLBACKS, 1)
    held_since = time.time()
    wait_until(lambda: time.time() >= held_since + 3, timeout=5)  # past give_up_after
    assert receiver.received == [] and smtp.messages == []

    receiver.respond_with(500, count=1)  # the first attempt after the release fails
    for name in CALLBACKS:
        expired = cli(daemon.config, "silence", "expire", ids[name])
        assert expired.returncode == 0, expired.stderr
    wait_until(
        lambda: states(daemon.config) == dict.fromkeys(CALLBACKS, ("delivered", None)),
        timeout=20,
        message=daemon.output,
    )
    assert len(smtp.messages) == 1
    paths = sorted(hook.path for hook in receiver.received if hook.answered_status == 200)
    assert paths == ["/apprise", "/hook"]
    again = cli(daemon.config, "silence", "expire", ids["hook"])
    assert (again.returncode, "already ended" in again.stdout) == (0, True)
    ended = cli(daemon.config, "silence", "list").stdout
    assert ended.count("ended") >= 3  # kept for the record
    assert daemon.stop() == 0
    assert "Traceback" not in daemon.output


def test_the_api_adds_lists_and_expires_silences_and_refuses_bad_ones(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    store_config: Callable[..., dict[str, Any]],
) -> None:
    simulator.set_job(JOB, "IN_PROGRESS", 10)
    simulator.set_job(OTHER, "IN_PROGRESS", 10)
    port = free_port()
    config = store_config(
        simulator,
        callbacks={"hook": webhook(receiver), "other": webhook(receiver, "/other")},
        jobs=[{"id": JOB, "notify": ["hook"]}, {"id": OTHER, "notify": ["other"]}],
        api=api_section(port),
    )
    daemon = daemon_factory(config)
    daemon.wait_for_log("api on")
    client = Client(f"http://127.0.0.1:{port}")
    made = client.call("POST", "/v1/silences", json={"callback": "hook", "for": "2h",
                                                       "comment": "deploy"})  # fmt: skip
    assert made.status_code == 201, made.text
    silence = made.json()["silence"]
    assert set(silence) == {"id", "callback", "starts_at", "ends_at", "author", "comment"}
    assert (silence["callback"], silence["author"], silence["comment"]) == (
        "hook", "pipelines", "deploy"
    )  # fmt: skip
    listed = client.call("GET", "/v1/silences").json()["silences"]
    assert [s["id"] for s in listed] == [silence["id"]]

    simulator.set_job(JOB, "DELIVERED", 100)
    simulator.set_job(OTHER, "DELIVERED", 100)
    receiver.wait_for(1)  # the other callback is not silenced
    wait_until(lambda: states(daemon.config).get("hook") == ("silenced", silence["id"]),
               message=daemon.output)  # fmt: skip
    assert [hook.path for hook in receiver.received] == ["/other"]

    reader = Client(f"http://127.0.0.1:{port}", READ_TOKEN)
    assert reader.call("GET", "/v1/silences").status_code == 200
    assert reader.call("DELETE", f"/v1/silences/{silence['id']}").status_code == 403
    assert client.call("DELETE", "/v1/silences/nope").status_code == 404
    gone = client.call("DELETE", f"/v1/silences/{silence['id']}")
    assert gone.status_code == 200, gone.text
    assert gone.json()["silence"]["ends_at"] < silence["ends_at"]  # ended now, not in 2h
    receiver.wait_for(2)
    assert sorted(hook.path for hook in receiver.received) == ["/hook", "/other"]

    refusals = {
        "no matcher": ({"for": "1h"}, "callback"),
        "unknown callback": ({"callback": "nope", "for": "1h"}, "callback"),
        "in the past": ({"callback": "hook", "until": "2001-01-01T00:00:00Z"}, "until"),
        "no span": ({"callback": "hook"}, "for"),
        "both spans": ({"callback": "hook", "for": "1h", "until": "2999-01-01T00:00:00Z"},
                       "for"),
        "bad duration": ({"callback": "hook", "for": "soon"}, "for"),
        "unknown field": ({"callback": "hook", "for": "1h", "why": "x"}, "why"),
    }  # fmt: skip
    for case, (body, path) in refusals.items():
        answer = client.call("POST", "/v1/silences", json=body)
        assert answer.status_code == 422, (case, answer.text)
        assert path in [d["path"] for d in answer.json()["details"]], (case, answer.text)
    assert (
        client.call(
            "POST",
            "/v1/silences",
            json={"callback": "hook", "for": "1h"},
            headers={"Authorization": f"Bearer {READ_TOKEN}"},
        ).status_code
        == 403
    )
    assert WRITE_TOKEN not in daemon.output
    assert daemon.stop() == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--for", "1h"], "one of the arguments --callback --match is required"),
        (["--callback", "nope", "--for", "1h"], "--callback: unknown callback 'nope'"),
        (["--callback", "hook", "--until", "2001-01-01T00:00:00Z"], "--until: 2001-01-01"),
        (["--callback", "hook", "--for", "0s"], "--for: must be longer than 0s"),
        (["--callback", "hook", "--for", "soon"], "--for: not a duration"),
        (["--match", "queue", "--for", "1h"], "--match: expected key=value"),
        (["--match", "Bad Key=x", "--for", "1h"], "--match Bad Key: not a label key"),
    ],
)
def test_silence_add_refuses_bad_input_with_one_line_and_exit_2(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    tmp_path: Path,
    args: list[str],
    expected: str,
) -> None:
    path = write_config(tmp_path / "config.yaml", base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}))  # fmt: skip
    result = cli(path, "silence", "add", *args)
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr
    assert cli(path, "migrate").returncode == 0
    unknown = cli(path, "silence", "expire", "no-such-id")
    assert unknown.returncode == 2 and "no silence 'no-such-id'" in unknown.stderr


# --- quiet hours ---------------------------------------------------------------

ENDS = "ExportQueue:00000023-0000-4000-8000-0000000000a1"
FAILS = "ExportQueue:00000023-0000-4000-8000-0000000000a2"
SYSTEM_ZONES = os.pathsep.join(zoneinfo.TZPATH)  # the daemon needs Etc/UTC & co too
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
    store_config: Callable[..., dict[str, Any]],
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
    daemon = daemon_factory(
        config, env={"PYTHONTZPATH": f"{tmp_path / 'zones'}{os.pathsep}{SYSTEM_ZONES}"}
    )
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
