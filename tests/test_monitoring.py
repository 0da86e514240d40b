"""The monitoring that ships: Prometheus alert rules (unit-tested with promtool), scrape
configs and the Grafana dashboard, all on the metric names a running daemon exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import base_config, webhook
from tests.support.daemon import DaemonProcess
from tests.support.postgres import free_port
from tests.support.waiting import wait_until

pytestmark = pytest.mark.monitoring

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yaml"
RULE_TESTS = PROMETHEUS / "alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboard.json"
RUNBOOK = ROOT / "docs" / "operations.md"
PROMETHEUS_OWN = {"up"}  # series Prometheus makes itself
SELECTOR = re.compile(r"\b([a-z_][a-z0-9_]*)\s*\{([^}]*)\}")
MATCHER = re.compile(r'([a-z_][a-z0-9_]*)\s*(?:=~|!~|!=|=)\s*"')
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool; skip (or fail in CI) without it."""
    if shutil.which("promtool") is None:
        if os.environ.get("NOTIFIER_TEST_CONTAINER_REQUIRED"):
            pytest.fail("promtool required (apt-get install prometheus)")
        pytest.skip("no promtool (Debian's prometheus package)")
    return subprocess.run(["promtool", *args], capture_output=True, text=True, timeout=120)


def rules() -> list[dict[str, Any]]:
    return [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in dashboard["panels"] for t in panel.get("targets", [])]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            queries.append(variable["definition"])
    return queries


def metric_selectors(expression: str) -> Iterator[tuple[str, set[str]]]:
    """Each metric an expression names, with the label names it matches on."""
    for match in SELECTOR.finditer(expression):
        if match.group(1) not in PROMQL_WORDS:
            yield match.group(1), set(MATCHER.findall(match.group(2)))
    for name in re.findall(r"\b(notifier_[a-z0-9_]+)\b(?!\s*\{)", expression):
        yield name, set()


def test_the_rules_pass_promtools_check_and_their_unit_tests() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
    config = promtool("check", "config", str(PROMETHEUS / "scrape.yaml"))
    assert config.returncode == 0, config.stdout + config.stderr


def test_every_alert_has_a_firing_and_a_quiet_test_a_command_and_a_runbook() -> None:
    cases: dict[str, list[bool]] = {}
    for test in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in test["alert_rule_test"]:
            cases.setdefault(case["alertname"], []).append(bool(case["exp_alerts"]))
    headings = set(re.findall(r"^## (\w+)$", RUNBOOK.read_text(), re.M))
    for rule in rules():
        name = rule["alert"]
        assert set(cases.get(name, [])) == {True, False}, f"{name}: firing and quiet cases"
        annotations = rule["annotations"]
        assert annotations["summary"]
        assert "`datasaur-notifier " in annotations["description"], name
        assert annotations["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert name in headings, f"docs/operations.md has no section {name}"


def test_the_kubernetes_scrape_config_keeps_the_job_name_the_rules_select() -> None:
    [job] = yaml.safe_load((PROMETHEUS / "scrape-kubernetes.yaml").read_text())["scrape_configs"]
    assert job["job_name"] == "datasaur-notifier"
    for rule in rules():
        assert 'job="datasaur-notifier"' in rule["expr"], rule["alert"]


def test_the_dashboard_is_a_grafana_dashboard_with_a_query_per_panel() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] and dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    titles = " ".join(panel["title"].lower() for panel in dashboard["panels"])
    for topic in ("jobs by state", "polls", "api errors", "notification latency", "outbox",
                  "by outcome, per callback", "paused callbacks", "instances"):  # fmt: skip
        assert topic in titles, topic


@pytest.fixture
def scraped(
    tmp_path: Path,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    daemon_factory: Callable[..., DaemonProcess],
) -> dict[str, set[str]]:
    """Every sample name a running daemon exports, with its label names, once it has
    polled (one poll failing), notified and counted a token refresh."""
    port = free_port()
    simulator.set_job("AutoLabelQueue:metrics-1", "DELIVERED", 100)
    simulator.inject("http_503", 1)
    config = base_config(
        simulator,
        tmp_path,
        callbacks={"hook": webhook(receiver)},
        jobs=[{"id": "AutoLabelQueue:metrics-1"}],
        metrics={"port": port},
    )
    daemon_factory(config)

    def families() -> dict[str, set[str]] | None:
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        found: dict[str, set[str]] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found.setdefault(sample.name, set()).update(sample.labels)
        needed = ("notifier_notification_latency_seconds_bucket", "notifier_poll_errors_total")
        return found if all(name in found for name in needed) else None

    return wait_until(families, 30, 0.2, "the daemon did not poll, fail once and notify")


def rule_test_series() -> list[str]:
    """The input series of the rules' unit tests (``name{label="value", ...}``)."""
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    return [series["series"] for test in tests for series in test["input_series"]]


SOURCES: dict[str, Callable[[], list[str]]] = {
    "alerts.yaml": lambda: [rule["expr"] for rule in rules()],
    "alerts.test.yaml": rule_test_series,
    "dashboard.json": dashboard_queries,
}


@pytest.mark.parametrize("source", sorted(SOURCES))
def test_every_metric_and_label_used_exists_on_a_running_daemon(
    source: str, scraped: dict[str, set[str]]
) -> None:
    expressions = SOURCES[source]()
    used = 0
    for expression in expressions:
        for name, labels in metric_selectors(expression):
            if name in PROMETHEUS_OWN:
                continue
            used += 1
            assert name in scraped, f"{source}: {name} is not exported (in {expression})"
            unknown = labels - scraped[name] - {"job", "instance"}
            assert not unknown, f"{source}: {name} has no label {unknown} (in {expression})"
    assert used >= 10
