"""A throwaway PostgreSQL server for the test session (or an external one from the environment).

``PostgresServer.start_local()`` runs ``initdb`` + ``pg_ctl`` on a temporary data directory,
a free port on 127.0.0.1 and a short unix socket directory, as the ``postgres`` user when we
are root (initdb refuses root). ``PostgresServer.external(url)`` wraps a server someone else
runs (``NOTIFIER_TEST_POSTGRES_URL``): databases can be created there, but it cannot be
stopped or restarted, so the tests that need that skip.

Teardown is ``pg_ctl stop -m immediate`` and removing the directory: from ``close()`` (the
session fixture's finalizer), from ``atexit``, and from a watchdog process that does the same
when the test process dies without running either (it waits for EOF on a pipe we hold).
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

URL_ENV = "NOTIFIER_TEST_POSTGRES_URL"
PREFERRED_BIN_DIR = Path("/usr/lib/postgresql/15/bin")
START_TIMEOUT = 60.0
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "log_min_messages": "warning",
    "log_line_prefix": "'%m [%p] %d '",
}

# Runs detached from the test process: blocks until the pipe from its parent closes (normal
# exit, crash or SIGKILL alike), then stops the server and removes its directory. argv: the
# pg_ctl stop command as a JSON list, then the directory.
_WATCHDOG = """
import json, shutil, subprocess, sys
sys.stdin.buffer.read()
subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
               timeout=60, check=False)
shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL binaries were found (and no external server was given)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def find_bin_dir() -> Path | None:
    """The directory holding ``pg_ctl``, ``initdb`` and ``postgres``: 15 first, then PATH, then
    the newest ``/usr/lib/postgresql/*/bin``."""
    candidates = [PREFERRED_BIN_DIR / "pg_ctl"]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve())
    versions = glob.glob("/usr/lib/postgresql/*/bin/pg_ctl")
    candidates += sorted((Path(p) for p in versions), key=_version_key, reverse=True)
    for pg_ctl in candidates:
        bin_dir = pg_ctl.parent
        if all(os.access(bin_dir / name, os.X_OK) for name in ("pg_ctl", "initdb", "postgres")):
            return bin_dir
    return None


def _version_key(pg_ctl: Path) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", pg_ctl.parent.parent.name))


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead (user, host, port and query kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


class PostgresServer:
    """A PostgreSQL server for tests: ``url``, per-test databases, restart/stop/start."""

    def __init__(self, url: str, bin_dir: Path | None = None, data_dir: Path | None = None):
        """Use ``start_local()`` or ``external()``."""
        self.url = url
        self.bin_dir = bin_dir
        self.data_dir = data_dir
        self.port = urlsplit(url).port or 5432
        self.controllable = data_dir is not None
        self._watchdog: subprocess.Popen[bytes] | None = None
        self._closed = False

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def external(cls, url: str) -> Self:
        """A server run elsewhere; checks that it answers."""
        server = cls(url)
        server.wait_ready()
        return server

    @classmethod
    def start_local(cls, bin_dir: Path | None = None) -> Self:
        """initdb + start a fresh server on a free port; ``close()`` (or process exit) ends it."""
        bin_dir = bin_dir or find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable(
                f"no PostgreSQL server binaries (pg_ctl, initdb, postgres) in {PREFERRED_BIN_DIR},"
                " on PATH or in /usr/lib/postgresql/*/bin"
            )
        # Short on purpose: the unix socket lives here and its path must stay under ~100 bytes.
        data_dir = Path(tempfile.mkdtemp(prefix="pg", dir="/tmp"))
        port = free_port()
        server = cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", bin_dir, data_dir)
        atexit.register(server.close)
        try:
            if os.geteuid() == 0:
                shutil.chown(data_dir, "postgres", "postgres")
            server._start_watchdog()
            server._initdb()
            server._start_on_a_free_port()
        except BaseException:
            server.close()
            raise
        return server

    # -- public API --------------------------------------------------------------------------

    @property
    def log_path(self) -> Path | None:
        """The server log (local servers only)."""
        return self.data_dir / "server.log" if self.data_dir else None

    def connect(self, dbname: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
        """An autocommit connection to ``dbname`` (default: the server URL's database)."""
        url = with_database(self.url, dbname) if dbname else self.url
        return psycopg.connect(url, autocommit=True, connect_timeout=5)

    def create_database(self, name: str) -> str:
        """Create database ``name``; its URL."""
        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return with_database(self.url, name)

    def drop_database(self, name: str, timeout: float = 30) -> None:
        """Drop ``name`` if it exists, ending whatever is still connected to it."""
        ident = sql.Identifier(name)
        deadline = time.monotonic() + timeout
        with self.connect() as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                return
            # No new connections (a pool reconnecting in the background) while we drop it.
            conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS false").format(ident))
            force = conn.info.server_version >= 130000
            while True:
                conn.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = %s AND pid <> pg_backend_pid()",
                    [name],
                )
                drop = "DROP DATABASE IF EXISTS {}" + (" WITH (FORCE)" if force else "")
                try:
                    conn.execute(sql.SQL(drop).format(ident))
                    return
                except psycopg.errors.ObjectInUse:
                    if time.monotonic() >= deadline:
                        raise
                    time.sleep(0.05)

    def restart(self, mode: str = "fast") -> None:
        """``pg_ctl restart -m mode``; returns once the server accepts connections again."""
        self._require_control("restart")
        self._pg_ctl("restart", "-m", mode, *self._start_args())
        self.wait_ready()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (an outage); ``start()`` brings it back on the same port and data."""
        self._require_control("stop")
        self._pg_ctl("stop", "-m", mode, "-w", "-t", str(int(START_TIMEOUT)))

    def start(self) -> None:
        """Start the (stopped) server; returns once it accepts connections."""
        self._require_control("start")
        self._pg_ctl("start", *self._start_args())
        self.wait_ready()

    def ensure_running(self) -> None:
        """Start the server again if a test left it stopped (no-op if external or running)."""
        if self.controllable and not self.is_running():
            self.start()

    def is_running(self) -> bool:
        """Whether a connection succeeds right now."""
        try:
            with psycopg.connect(self.url, connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Poll until a connection succeeds; RuntimeError (with the log's tail) after timeout."""
        deadline = time.monotonic() + timeout
        while not self.is_running():
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"PostgreSQL at {self.url} not ready in {timeout}s{self._tail()}"
                )
            time.sleep(0.05)

    def close(self) -> None:
        """Stop immediately and remove the data directory (idempotent; a no-op if external)."""
        if self._closed:
            return
        self._closed = True
        if self.data_dir is None:
            return
        if self.data_dir.exists():
            subprocess.run(
                self._stop_command(),
                capture_output=True,
                timeout=60,
                check=False,
                cwd="/",
            )
            shutil.rmtree(self.data_dir, ignore_errors=True)
        if self._watchdog is not None:
            assert self._watchdog.stdin is not None
            self._watchdog.stdin.close()  # nothing left to do: let it exit
            self._watchdog.wait(timeout=60)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- internals ---------------------------------------------------------------------------

    def _require_control(self, action: str) -> None:
        if not self.controllable:
            pytest.skip(f"cannot {action} the external PostgreSQL server given by {URL_ENV}")

    def _as_postgres(self, *argv: str) -> list[str]:
        """``argv`` run as the postgres user if we are root (initdb and postgres refuse root)."""
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def _run(self, argv: list[str], timeout: float = START_TIMEOUT + 30) -> None:
        done = subprocess.run(
            self._as_postgres(*argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",  # the postgres user may not be allowed into our working directory
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(argv)} failed ({done.returncode}): "
                f"{done.stdout.strip()} {done.stderr.strip()}{self._tail()}"
            )

    def _initdb(self) -> None:
        assert self.bin_dir is not None and self.data_dir is not None
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        settings = dict(SERVER_SETTINGS, unix_socket_directories=f"'{self.data_dir}'")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\n# tests/support/postgres.py\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def _start_on_a_free_port(self, attempts: int = 5) -> None:
        """Start on ``self.port``; another free port if someone took it meanwhile."""
        assert self.data_dir is not None
        for attempt in range(attempts):
            if attempt:
                self.port = free_port()
                self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
            with (self.data_dir / "postgresql.conf").open("a") as conf:
                conf.write(f"port = {self.port}\n")  # the last one wins
            try:
                self.start()
                return
            except RuntimeError:
                if attempt == attempts - 1 or "could not bind" not in self._tail():
                    raise

    def _start_args(self) -> list[str]:
        # -l keeps the postmaster's output off our pipes (and in a file for failures).
        return ["-w", "-t", str(int(START_TIMEOUT)), "-l", str(self.log_path)]

    def _pg_ctl(self, *args: str) -> None:
        assert self.bin_dir is not None and self.data_dir is not None
        self._run([str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), *args])

    def _stop_command(self) -> list[str]:
        assert self.bin_dir is not None and self.data_dir is not None
        pg_ctl = str(self.bin_dir / "pg_ctl")
        return self._as_postgres(pg_ctl, "-D", str(self.data_dir), "stop", "-m", "immediate", "-w")

    def _start_watchdog(self) -> None:
        self._watchdog = subprocess.Popen(
            [sys.executable, "-c", _WATCHDOG, json.dumps(self._stop_command()), str(self.data_dir)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
            start_new_session=True,  # a Ctrl-C to our process group must not kill it first
        )

    def _tail(self, lines: int = 20) -> str:
        log = self.log_path
        if log is None or not log.exists():
            return ""
        text = log.read_text(errors="replace").splitlines()[-lines:]
        return "\n--- server log ---\n" + "\n".join(text)
