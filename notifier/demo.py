"""``datasaur-notifier demo``: the real daemon, end to end, on this machine only.

An embedded Datasaur simulator serves a few jobs that progress and end, a local
receiver verifies every signed webhook, and the daemon runs as a subprocess on a
temporary state file. Exits 0 once every expected notification has arrived.
"""

from __future__ import annotations

import base64
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import yaml

from notifier.standins.receiver import ReceivedWebhook, WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator

DEADLINE = 45.0
# (job id, name, timeline of (seconds, status, progress))
JOBS: list[tuple[str, str, list[tuple[float, str, int]]]] = [
    ("AutoLabelQueue:demo-0001", "auto-label batch 12", [(0, "DELIVERED", 100)]),
    (
        "AutoLabelQueue:demo-0002",
        "auto-label batch 13",
        [
            (0, "QUEUED", 0),
            (1.5, "IN_PROGRESS", 30),
            (3, "IN_PROGRESS", 70),
            (4.5, "DELIVERED", 100),
        ],
    ),
    (
        "ExportQueue:demo-0003",
        "export to S3",
        [(0, "IN_PROGRESS", 10), (2.5, "IN_PROGRESS", 60), (6, "DELIVERED", 100)],
    ),
    ("ProjectCreation:demo-0004", "project creation", [(0, "QUEUED", 0), (3.5, "FAILED", 0)]),
]
# With --keep: one more job that runs for about two minutes, so a progress bar moves.
LONG_JOB = ("ExportQueue:demo-0005", "long export")
LONG_STEPS = [(0.0, "QUEUED", 0)] + [(2.0 + 6.0 * n, "IN_PROGRESS", 5 * n) for n in range(1, 20)]
LONG_STEPS.append((122.0, "DELIVERED", 100))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(
    sim: DatasaurSimulator,
    receiver: WebhookReceiver,
    secret: str,
    state: Path,
    api_port: int,
    keep: bool,
) -> dict[str, Any]:
    jobs = [*JOBS, (*LONG_JOB, LONG_STEPS)] if keep else JOBS
    return {
        "datasaur": {
            "graphql_url": sim.graphql_url,
            "client_id": "demo",
            "client_secret": "${DEMO_CLIENT_SECRET}",
            "timeout": "5s",
        },
        "state_path": str(state),
        "polling": {"interval": "0.5s", "max_interval": "2s", "expire_after": "5m"},
        "delivery": {"timeout": "5s", "initial_backoff": "0.5s", "max_backoff": "5s"},
        "callbacks": {
            "demo-hook": {"type": "webhook", "url": receiver.url + "/hook", "secret": secret}
        },
        "jobs": [{"id": job_id, "name": name} for job_id, name, _ in jobs],
        "api": {
            "listen": f"127.0.0.1:{api_port}",
            "tokens": [{"name": "demo", "token": "${DEMO_API_TOKEN}", "scope": "write"}],
        },
    }


def _relay(stream: IO[str]) -> None:
    for line in stream:
        print(f"  daemon | {line.rstrip()}", flush=True)


def _announce(started: float) -> Callable[[ReceivedWebhook], None]:
    def show(webhook: ReceivedWebhook) -> None:
        payload = webhook.json or {}
        data = payload.get("data", {})
        check = "signature verified" if webhook.signature_ok else "BAD SIGNATURE"
        print(
            f"[{time.monotonic() - started:5.1f}s] webhook {payload.get('type')}: "
            f"{data.get('name')} ({data.get('job_id')}), status {data.get('status')}, "
            f"progress {data.get('progress')}; {check}",
            flush=True,
        )

    return show


def run_demo(keep: bool = False) -> int:
    """Run the demo; 0 once every notification arrived with a valid signature.

    With ``keep``, the daemon (and its status page) stays up after that until SIGINT or
    SIGTERM, so the page can be looked at; a fifth job runs for two minutes, the
    simulator makes up any job registered meanwhile (it ends about 20 s later, as with
    ``simulate``), and the commands to try against the demo's config are printed.
    """
    secret = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
    client_secret = secrets.token_urlsafe(16)
    api_token = secrets.token_urlsafe(32)  # one-time: this run's only token
    api_port = _free_port()
    page = f"http://127.0.0.1:{api_port}/"
    started = time.monotonic()
    with (
        tempfile.TemporaryDirectory(prefix="datasaur-notifier-demo-") as tmp,
        DatasaurSimulator(client_id="demo", client_secret=client_secret, auto_jobs=keep) as sim,
        WebhookReceiver(secret=secret) as receiver,
    ):
        for job_id, _, steps in JOBS:
            sim.script_job(job_id, [(float(t), status, p) for t, status, p in steps])
        if keep:
            sim.script_job(LONG_JOB[0], LONG_STEPS)
        config_path = Path(tmp) / "config.yaml"
        state = Path(tmp) / "state.db"
        config_path.write_text(
            yaml.safe_dump(_config(sim, receiver, secret, state, api_port, keep))
        )
        config_path.chmod(0o600)
        receiver.on_receive = _announce(started)
        print(f"Datasaur simulator on {sim.url}; webhook receiver on {receiver.url}")
        print(f"Status page: {page} (token for this run only: {api_token})")
        print(f"Watching {len(JOBS)} jobs: 3 will be DELIVERED, 1 will FAIL.\n", flush=True)
        env = {**os.environ, "DEMO_CLIENT_SECRET": client_secret, "DEMO_API_TOKEN": api_token}
        daemon = subprocess.Popen(
            [sys.executable, "-m", "notifier", "-c", str(config_path), "run"],
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert daemon.stderr is not None
        relay = threading.Thread(target=_relay, args=(daemon.stderr,), daemon=True)
        relay.start()
        try:
            ok = _wait_for_all(receiver, daemon)
            if keep:
                _stay_up(daemon, page, api_token, config_path, env)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
            relay.join(5)
        _summary(config_path, env, ok)
    return 0 if ok else 1


def _stay_up(
    daemon: subprocess.Popen[str],
    page: str,
    api_token: str,
    config_path: Path,
    env: dict[str, str],
) -> None:
    """Say what to try, then keep the daemon running until SIGINT (Ctrl-C) or SIGTERM,
    or until it exits."""
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        print(f"\nThe daemon stays up: open {page} and sign in with {api_token}", flush=True)
        print(_try_these(config_path, env, page), flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        while daemon.poll() is None and not stop.wait(0.2):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _try_these(config_path: Path, env: dict[str, str], page: str) -> str:
    """The commands to try in another shell against the demo's config."""
    cli = f"datasaur-notifier -c {config_path}"
    return "\n".join([
        f"\nThe demo's config: {config_path}. Try, in another shell:",
        f"  export DEMO_CLIENT_SECRET={env['DEMO_CLIENT_SECRET']}"
        f" DEMO_API_TOKEN={env['DEMO_API_TOKEN']}",
        f"  {cli} status",
        f"  {cli} wait {LONG_JOB[0]}          # the long export's progress bar",
        f"  {cli} watch ExportQueue:my-job     # any id: the simulator makes it up",
        f"  {cli} deliveries",
        f"  curl -s -H \"Authorization: Bearer $DEMO_API_TOKEN\" {page}v1/jobs",
    ])  # fmt: skip


def _wait_for_all(receiver: WebhookReceiver, daemon: subprocess.Popen[str]) -> bool:
    expected = {job_id for job_id, _, _ in JOBS}
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline and daemon.poll() is None:
        arrived = {
            (w.json or {}).get("data", {}).get("job_id")
            for w in receiver.received
            if w.signature_ok
        }
        if expected <= arrived:
            return True
        time.sleep(0.1)
    return False


def _summary(config_path: Path, env: dict[str, str], ok: bool) -> None:
    print(flush=True)
    for command in ("status", "deliveries"):
        print(f"$ datasaur-notifier {command}", flush=True)
        subprocess.run(
            [sys.executable, "-m", "notifier", "-c", str(config_path), command],
            check=False,
            env=env,
        )
        print(flush=True)
    if ok:
        print("Demo finished: every job's notification arrived exactly once, signed.")
    else:
        print("Demo failed: not every notification arrived in time.", file=sys.stderr)
