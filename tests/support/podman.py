"""Build the container image and run it with podman, the way the README says.

Everything runs on the host's network (``--network host``): the image's daemon reaches
the tests' simulator, receivers and PostgreSQL on 127.0.0.1, and they reach it.

Where the machine has hybrid cgroups (v1 controllers plus a v2 ``unified`` mount), crun
refuses to start containers; podman works with runc, cgroupfs and no default ulimits,
which :func:`ensure_runtime` sets in a drop-in (only there, and only if none is set).
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/datasaur-notifier:test"
BASE_ENV = "NOTIFIER_TEST_IMAGE_BASE"
DEFAULT_BASE = "localhost/debian-python:bookworm"
REQUIRED_ENV = "NOTIFIER_TEST_CONTAINER_REQUIRED"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
DROP_IN = Path("/etc/containers/containers.conf.d/50-datasaur-notifier-hybrid-cgroups.conf")
DROP_IN_TEXT = """\
# Written by datasaur-notifier's tests: this machine has hybrid cgroups, which crun refuses.
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""
UID = 10001  # the image's user (Containerfile)


def unavailable(reason: str) -> None:
    """Skip, or fail where the container tests are required (CI)."""
    if os.environ.get(REQUIRED_ENV):
        pytest.fail(f"container tests required: {reason}")
    pytest.skip(reason)


def podman(
    *args: str, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS``; AssertionError naming its output if it fails and ``check``."""
    result = subprocess.run(
        ["podman", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"podman {' '.join(args)}: exit {result.returncode}\n{result.stdout}\n{result.stderr}"
        )
    return result


def hybrid_cgroups() -> bool:
    """cgroup v1 controllers with the v2 hierarchy mounted beside them."""
    return Path("/sys/fs/cgroup/unified").is_dir()


def ensure_runtime() -> None:
    """podman and a runtime that works here; skips (or fails) with the reason otherwise."""
    if shutil.which("podman") is None:
        unavailable("podman is not installed (apt-get install podman buildah runc)")
    if not hybrid_cgroups() or any(DROP_IN.parent.glob("*.conf")):
        return
    if shutil.which("runc") is None:
        unavailable("hybrid cgroups need runc (apt-get install runc)")
    if os.geteuid() != 0:
        unavailable(f"hybrid cgroups: write {DROP_IN} as root:\n{DROP_IN_TEXT}")
    DROP_IN.parent.mkdir(parents=True, exist_ok=True)
    DROP_IN.write_text(DROP_IN_TEXT)


def ensure_base() -> str:
    """The base image to build on: ``$NOTIFIER_TEST_IMAGE_BASE``, else the local Debian one
    (made by ``deploy/container/make-base-image`` when missing)."""
    base = os.environ.get(BASE_ENV, DEFAULT_BASE)
    if podman("image", "exists", base, check=False).returncode == 0:
        return base
    if base != DEFAULT_BASE:
        unavailable(f"base image {base} is not in podman's store")
    if shutil.which("mmdebstrap") is None:
        unavailable(f"no {base} and no mmdebstrap to make it (apt-get install mmdebstrap)")
    subprocess.run([str(ROOT / "deploy/container/make-base-image"), base], check=True, timeout=900)
    return base


def build_command(base: str, secret: bool | None = None) -> list[str]:
    """The README's build command, with this machine's base image and trust store (the
    ``ca`` secret where the host has one, or as ``secret`` says)."""
    command = ["podman", "build", "--format", "docker", "--network", "host"]
    if HOST_CA.is_file() if secret is None else secret:
        command += ["--secret", f"id=ca,src={HOST_CA}"]
    return [*command, "--build-arg", f"BASE={base}", "-t", IMAGE, "-f", "Containerfile", "."]


def build_image() -> str:
    """Build the image from this checkout (layers cached by podman); its name."""
    ensure_runtime()
    command = build_command(ensure_base())
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"
    return IMAGE


def readable_by_image(path: Path) -> Path:
    """Let the image's user read a file mounted into the container (as the README says)."""
    if os.geteuid() == 0:
        os.chown(path, UID, UID)
    else:
        path.chmod(0o644)
    return path


def write_mounted_config(path: Path, config: dict[str, Any]) -> Path:
    """A config file for the container, readable by its user only."""
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return readable_by_image(path)


class Container:
    """One ``podman run -d`` of the image; removed (with its volumes) on exit."""

    def __init__(self, image: str, *options: str, command: tuple[str, ...] = ()) -> None:
        self.name = f"notifier-test-{uuid.uuid4().hex[:10]}"
        self.image = image
        self.options = options
        self.command = command

    def start(self) -> Container:
        podman("run", "-d", "--name", self.name, "--network", "host", *self.options,
               self.image, *self.command)  # fmt: skip
        return self

    @property
    def logs(self) -> str:
        """What the container wrote to stdout and stderr."""
        result = podman("logs", self.name, check=False)
        return result.stdout + result.stderr

    def state(self) -> dict[str, Any]:
        """``podman inspect``'s ``State``."""
        found = json.loads(podman("inspect", self.name).stdout)
        return dict(found[0]["State"])

    def running(self) -> bool:
        return bool(self.state()["Running"])

    def exec(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return podman("exec", self.name, *argv, check=False)

    def remove(self) -> None:
        podman("rm", "--force", "--volumes", "--time", "0", self.name, check=False)


@contextmanager
def running(image: str, *options: str, command: tuple[str, ...] = ()) -> Iterator[Container]:
    """A started container, removed afterwards; its logs are shown if the test failed."""
    container = Container(image, *options, command=command).start()
    try:
        yield container
    except BaseException:
        print(f"--- logs of {container.name} ---\n{container.logs}")
        raise
    finally:
        container.remove()


@contextmanager
def package_index(root: Path, requirements: list[str]) -> Iterator[str]:
    """A PEP 503 index on loopback serving ``requirements`` and what they need, downloaded
    here first (where the host's trust store is at hand); its ``/simple/`` URL.

    pip counts plain HTTP to 127.0.0.1 as secure, so a build given this index needs no CA.
    """
    files = root / "files"
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "-d", str(files), *requirements],
        check=True,
        timeout=600,
    )
    for found in sorted(files.iterdir()):
        name = found.name.split("-")[0] if found.suffix == ".whl" else found.name.rsplit("-", 1)[0]
        page = root / "simple" / re.sub(r"[-_.]+", "-", name).lower() / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        with page.open("a") as html:
            html.write(f'<a href="../../files/{found.name}">{found.name}</a><br>\n')
    handler = functools.partial(QuietFiles, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple/"
    finally:
        server.shutdown()
        server.server_close()


class QuietFiles(SimpleHTTPRequestHandler):
    """Static files, without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass
