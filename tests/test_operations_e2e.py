"""Retention and online backup, end to end (issue 12)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess, cli, deliveries, status, write_config
from tests.support.waiting import wait_until

Factory = Callable[..., DaemonProcess]


def test_retention_removes_finished_jobs_and_keeps_pending_deliveries(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    failing = WebhookReceiver()
    failing.start()
    failing.respond_with(500)
    try:
        simulator.set_job("kept", "DELIVERED", 100)
        simulator.set_job("pruned", "DELIVERED", 100)
        config = base_config(
            simulator,
            tmp_path,
            callbacks={"hook": webhook(receiver), "down": webhook(failing)},
            jobs=[{"id": "pruned", "notify": ["hook"]}, {"id": "kept", "notify": ["down"]}],
            retention="2s",
        )
        daemon = daemon_factory(config)
        wait_until(lambda: receiver.received, timeout=15)
        wait_until(lambda: "pruned" not in status(daemon.config), timeout=20)
        daemon.wait_for_log("retention: removed 1 finished jobs, 1 deliveries, 1 attempts")
        kept = status(daemon.config)
        assert kept["kept"]["state"] == "done"
        rows = deliveries(daemon.config)
        assert [(d["job_id"], d["state"]) for d in rows] == [("kept", "pending")]
    finally:
        failing.stop()


def test_backup_under_load_is_complete_and_a_restored_daemon_does_not_notify_again(
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Factory,
    tmp_path: Path,
) -> None:
    ids = [f"ExportQueue:b-{n}" for n in range(60)]
    for job_id in ids:
        simulator.set_job(job_id, "DELIVERED", 100)
    config = base_config(
        simulator, tmp_path, callbacks={"hook": webhook(receiver)}, jobs=[{"id": i} for i in ids]
    )
    daemon = daemon_factory(config)
    backup = tmp_path / "backups" / "state-copy.db"
    # Taken while the daemon is polling and delivering.
    result = cli(daemon.config, "backup", str(backup))
    assert result.returncode == 0, result.stderr
    assert f"to {backup}" in result.stdout
    with closing(sqlite3.connect(backup)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM jobs").fetchone()[0] == len(ids)

    wait_until(lambda: len(receiver.received) == len(ids), timeout=30)
    wait_until(
        lambda: all(d["state"] == "delivered" for d in deliveries(daemon.config)), timeout=15
    )
    assert daemon.stop() == 0
    final = cli(daemon.config, "backup", str(backup))
    assert final.returncode == 0, final.stderr

    restored = dict(config, state_path=str(backup))
    path = write_config(tmp_path / "restored.yaml", restored)
    again = DaemonProcess(path).start()
    try:
        again.wait_ready()
        wait_until(lambda: "watching 0 jobs" in again.run_output, timeout=10)
        jobs = json.loads(cli(path, "status", "--json").stdout)["jobs"]
        assert {job["state"] for job in jobs} == {"done"}
        assert len(receiver.received) == len(ids)  # nothing sent again
    finally:
        again.stop()


def test_backup_of_a_postgresql_state_says_use_pg_dump(tmp_path: Path) -> None:
    config = {
        "datasaur": {"token": "t"},
        "state_url": "postgresql://notifier@127.0.0.1:1/notifier",
    }
    path = write_config(tmp_path / "config.yaml", config)
    result = cli(path, "backup", str(tmp_path / "copy.db"))
    assert result.returncode == 2
    assert "pg_dump" in result.stderr
