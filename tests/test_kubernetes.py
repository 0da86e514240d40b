"""deploy/kubernetes/: the manifests pass the Kubernetes schema offline, say what the issue
asks of them, and their Deployment runs here under ``podman kube play``: 2 replicas on the
tests' PostgreSQL share the work and notify a receiver, and when one is killed the other
takes its work over within one lease.

``podman kube play`` (4.3) has known gaps, bridged by the overlay in :func:`play_overlay`
and nowhere in the manifests users get: a Secret's values arrive in its volume still
base64-encoded (and ``stringData`` is ignored), so the overlay mounts the same keys from a
ConfigMap where the Secret goes; and replicas on the host's network share its ports, so the
overlay's config asks for any free port (the pods run on the host's network: no bridge
networks here).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import psycopg
import pytest
import requests
import yaml

from notifier.config import load_config
from notifier.durations import parse_duration
from notifier.standins.receiver import WebhookReceiver
from notifier.standins.simulator import DatasaurSimulator
from tests.conftest import CLIENT_ID, CLIENT_SECRET, WEBHOOK_SECRET
from tests.support.podman import podman
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
KUBERNETES = ROOT / "deploy" / "kubernetes"
SCHEMA_VERSION = "1.30"
SCHEMA_CHECK = f"kubernetes-validate --strict -k {SCHEMA_VERSION} --quiet deploy/kubernetes/*.yaml"
API_TOKEN = "k8s-test-token-" + "0123456789abcdef" * 2
LEASE = 4.0
JOBS = [f"AutoLabelQueue:k8s-{n:02d}" for n in range(12)]


def resources() -> list[dict[str, Any]]:
    """The documents of kustomization.yaml's resources, in its order."""
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return [
        doc
        for name in kustomization["resources"]
        for doc in yaml.safe_load_all((KUBERNETES / name).read_text())
    ]


def by_kind(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in docs}


def shipped_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(yaml.safe_load(by_kind(docs)["ConfigMap"]["data"]["config.yaml"]))


def test_every_manifest_passes_the_schema_check_offline() -> None:
    for path in sorted(KUBERNETES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc["kind"] == "Kustomization":
                continue
            kubernetes_validate.validate(doc, SCHEMA_VERSION, strict=True)
    # The README's command (the shell expands its glob; here Python does).
    [program, *options, pattern] = SCHEMA_CHECK.split()
    found = shutil.which(program) or str(Path(sys.executable).with_name(program))
    files = sorted(str(path.relative_to(ROOT)) for path in ROOT.glob(pattern))
    checked = subprocess.run(
        [found, *options, *files], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "ERROR" not in checked.stdout + checked.stderr


def test_the_deployment_is_hardened_probed_and_outlives_its_lease() -> None:
    docs = resources()
    kinds = by_kind(docs)
    assert {"Namespace", "ConfigMap", "Secret", "Deployment", "Service"} <= set(kinds)
    assert {"PodDisruptionBudget", "NetworkPolicy"} <= set(kinds)
    deployment = kinds["Deployment"]["spec"]
    assert deployment["replicas"] == 2
    pod = deployment["template"]["spec"]
    [container] = pod["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    config = shipped_config(docs)
    assert config["state_url"].startswith("${file:")  # PostgreSQL, from the Secret
    assert ports == {"api": 8080, "metrics": 9108}
    assert config["metrics"] == {"host": "0.0.0.0", "port": 9108}
    assert config["api"]["listen"] == "0.0.0.0:8080"
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    security = container["securityContext"]
    assert (security["runAsNonRoot"], security["runAsUser"]) == (True, 10001)
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    assert pod["terminationGracePeriodSeconds"] > parse_duration(config["cluster"]["lease"])
    [ingress] = kinds["NetworkPolicy"]["spec"]["ingress"]
    assert ingress["ports"] == [{"protocol": "TCP", "port": "api"}]
    service_ports = {port["name"] for port in kinds["Service"]["spec"]["ports"]}
    assert service_ports == {"api", "metrics"}
    annotations = deployment["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(ports["metrics"])


def test_the_configmaps_config_is_valid_with_the_secret_mounted(tmp_path: Path) -> None:
    docs = resources()
    text = by_kind(docs)["ConfigMap"]["data"]["config.yaml"]
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    values = secret_values("postgresql://notifier@127.0.0.1:5432/notifier")
    for key in by_kind(docs)["Secret"]["stringData"]:
        (secrets / key).write_text(values[key] + "\n")
    path = tmp_path / "config.yaml"
    path.write_text(text.replace("/run/secrets/datasaur-notifier", str(secrets)))
    config = load_config(path)
    assert config.state_url is not None and config.metrics.port == 9108


def secret_values(state_url: str) -> dict[str, str]:
    """The Secret's keys, with this test run's values."""
    return {
        "datasaur-client-secret": CLIENT_SECRET,
        "state-url": state_url,
        "webhook-secret": WEBHOOK_SECRET,
        "api-token": API_TOKEN,
    }


def play_overlay(
    docs: list[dict[str, Any]],
    suffix: str,
    sim: DatasaurSimulator,
    receiver_url: str,
    state_url: str,
) -> list[dict[str, Any]]:
    """The manifests' ConfigMap, Secret and Deployment as this test plays them: the
    stand-ins instead of Datasaur and the receivers, fast timings, names of their own,
    the image built here, and podman 4.3's gaps bridged (see the module docstring)."""
    kinds = by_kind(docs)
    config = shipped_config(docs)
    config["datasaur"].update(
        graphql_url=sim.graphql_url, client_id=CLIENT_ID, timeout="1s", batch_size=3
    )
    config["polling"] = {"interval": "0.2s", "max_interval": "1s", "expire_after": 0}
    config["delivery"] = {"timeout": "2s", "initial_backoff": "0.2s", "max_backoff": "1s"}
    config["cluster"]["lease"] = f"{LEASE:g}s"
    config["metrics"]["port"] = 0  # host-network replicas: each takes a free port
    config["api"]["listen"] = "0.0.0.0:0"
    config["callbacks"]["ops-hook"]["url"] = receiver_url
    config["jobs"] = [{"id": job} for job in JOBS]
    name = f"notifier-k8s-{suffix}"
    configmap = {**kinds["ConfigMap"], "metadata": {"name": name}}
    configmap["data"] = {"config.yaml": yaml.safe_dump(config, sort_keys=False)}
    # podman 4.3 writes a Secret's values into its volume still base64-encoded: the same
    # keys come from a ConfigMap, mounted where the Secret would be.
    secrets = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name + "-secret"}}
    secrets["data"] = secret_values(state_url)
    deployment = json.loads(json.dumps(kinds["Deployment"]))
    deployment["metadata"] = {"name": name}
    pod = deployment["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    [container] = pod["containers"]
    container["image"] = "localhost/datasaur-notifier:test"
    del container["ports"]  # podman maps declared ports, which the host network refuses
    for volume in pod["volumes"]:
        if "configMap" in volume:
            volume["configMap"]["name"] = name
        if "secret" in volume:
            volume["configMap"] = {"name": name + "-secret"}
            del volume["secret"]
    return [configmap, secrets, deployment]


@pytest.fixture
def played(tmp_path: Path, notifier_image: str) -> Iterator[Any]:
    """``played(docs) -> [container names]``; everything played is removed afterwards."""
    files: list[Path] = []

    def play(docs: list[dict[str, Any]]) -> list[str]:
        path = tmp_path / f"play-{len(files)}.yaml"
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        files.append(path)
        podman("kube", "play", str(path), timeout=180)
        [deployment] = [doc for doc in docs if doc["kind"] == "Deployment"]
        prefix = deployment["metadata"]["name"] + "-pod-"
        listed = json.loads(podman("ps", "-a", "--format", "json").stdout)
        return sorted(
            name
            for entry in listed
            for name in entry["Names"]
            if name.startswith(prefix) and not entry.get("IsInfra")
        )

    yield play
    for path in files:
        podman("kube", "down", str(path), timeout=120, check=False)


def metrics_url(container: str) -> str:
    """Where a replica serves /metrics: its log says which free port it took."""

    def logged() -> str | None:
        logs = podman("logs", container, check=False)
        found = re.search(r"metrics on (http://[0-9.]+:\d+)/metrics", logs.stdout + logs.stderr)
        return found.group(1).replace("0.0.0.0", "127.0.0.1") + "/metrics" if found else None

    return wait_until(logged, 60, 0.2, f"{container} never served its metrics")


def counter(url: str, name: str) -> float:
    """The sum of a metric's samples on one replica."""
    text = requests.get(url, timeout=5).text
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


@pytest.mark.container
def test_kube_play_runs_two_replicas_that_share_the_work_and_take_over(
    played: Any,
    simulator: DatasaurSimulator,
    receiver: WebhookReceiver,
    postgres_url: str,
) -> None:
    receiver.respond_with(200, delay=1.5)  # deliveries are in flight when one replica dies
    suffix = uuid.uuid4().hex[:8]
    docs = play_overlay(resources(), suffix, simulator, receiver.url + "/hook", postgres_url)
    replicas = played(docs)
    assert len(replicas) == 2, replicas
    for name in replicas:  # the manifests' hardening, as podman applied it
        [inspected] = json.loads(podman("inspect", name).stdout)
        assert inspected["HostConfig"]["ReadonlyRootfs"] is True, name
        assert inspected["Config"]["User"].split(":")[0] == "10001", inspected["Config"]["User"]
    urls = {name: metrics_url(name) for name in replicas}

    def alive() -> int:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM instances").fetchone()
        return int(row[0]) if row else 0

    wait_until(lambda: alive() == 2, 60, 0.2, "two instances never heartbeat")
    for job in JOBS:  # polled for a few seconds, in small batches: both replicas take some
        simulator.script_job(job, [(0, "IN_PROGRESS", 10), (4, "DELIVERED", 100)])
    receiver.wait_for(2, 60)
    # Both replicas poll: the work is shared.
    wait_until(lambda: all(counter(u, "notifier_job_polls_total") > 0 for u in urls.values()), 30)
    holder, held = lease_holder(postgres_url, replicas)
    survivor = next(name for name in replicas if name != holder)
    podman("kill", "--signal", "KILL", holder)
    killed_at = time.monotonic()

    def taken_over() -> bool:
        """The delivery the killed replica held is the survivor's (or already sent)."""
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT d.state, i.name FROM deliveries d"
                " LEFT JOIN instances i ON i.id = d.lease_owner WHERE d.id = %s",
                (held,),
            ).fetchone()
        assert row is not None
        return row[0] == "delivered" or str(row[1]).startswith(pod_of(survivor))

    wait_until(taken_over, LEASE + 30, 0.1, f"{survivor} never took delivery {held} over")
    # Within one lease (claimed before the kill, it expires at most LEASE after it), plus
    # a free worker on the survivor (each send takes the receiver's 1.5 s) and a tick.
    took_over = time.monotonic() - killed_at
    assert took_over < LEASE + 3, f"taken over {took_over:.1f}s after the kill"

    def all_delivered() -> bool:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            states = conn.execute("SELECT state FROM deliveries").fetchall()
        return len(states) == len(JOBS) and all(state == ("delivered",) for state in states)

    wait_until(
        all_delivered, LEASE + 30, 0.2, "the killed replica's deliveries were not taken over"
    )
    assert counter(urls[survivor], "notifier_lease_takeovers_total") > 0
    ids = {w.headers["webhook-id"] for w in receiver.received}
    assert len(ids) == len(JOBS)  # each job notified; a resend keeps its webhook-id
    assert all(w.signature_ok for w in receiver.received)


def lease_holder(postgres_url: str, replicas: list[str]) -> tuple[str, str]:
    """The replica (container) holding a delivery's lease right now, and that delivery."""

    def holding() -> tuple[str, str] | None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT i.name, d.id FROM deliveries d JOIN instances i ON i.id = d.lease_owner"
                " WHERE d.state = 'pending' AND d.lease_until > extract(epoch from now()) LIMIT 1"
            ).fetchone()
        if row is None:
            return None
        found = [name for name in replicas if str(row[0]).startswith(pod_of(name))]
        return (found[0], str(row[1])) if found else None

    return wait_until(holding, 30, 0.05, "no replica held a delivery's lease")


def pod_of(container: str) -> str:
    """``notifier-k8s-x-pod-0-notifier`` -> ``notifier-k8s-x-pod-0`` (its pod's hostname)."""
    return container.rsplit("-", 1)[0]
