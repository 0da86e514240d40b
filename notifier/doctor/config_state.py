"""Doctor group 1: the config, as ``check-config`` reads it, and the state store
(SQLite file writable, or PostgreSQL reachable; schema version; migrations pending).
Nothing is created or migrated: the state is only read."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

from notifier.config import Config, ConfigError, load_config, secrets_of, silent_jobs
from notifier.doctor.report import Check, fail, ok, warn
from notifier.logs import redact
from notifier.store.schema import migrations

_KEY_PATH = re.compile(r"^[\w\[\].-]+(?=: | \()")


def _key_of(problem: str) -> str | None:
    """The key path a problem or warning starts with (``datasaur.client_id: ...``)."""
    found = _KEY_PATH.match(problem)
    return found[0] if found else None


def check_config(path: Path) -> tuple[Config | None, list[Check]]:
    """The config (None if it is invalid) and its checks; its secrets are redacted from
    then on."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, [fail("config", f"{exc.source}: {p}", _key_of(p)) for p in exc.problems]
    redact(secrets_of(config))
    summary = f"{path}: valid ({len(config.callbacks)} callbacks, {len(config.jobs)} jobs)"
    checks = [ok("config", summary)]
    checks += [warn("config", text, _key_of(text)) for text in silent_jobs(config)]
    return config, checks


def check_state(config: Config) -> list[Check]:
    """The state store's checks."""
    if config.state_url is not None:
        return _postgres(config.state_url)
    return _sqlite(config.state_path)


def _versions(name: str, backend: str, version: int, where: str, fix: str) -> Check:
    known = len(migrations(backend))
    if version > known:
        detail = f"{where}: schema version {version}, newer than this version's {known}"
        return fail(name, detail + " (a newer datasaur-notifier wrote it)", fix)
    if version < known:
        pending = known - version
        detail = f"{where}: schema version {version}, {pending} migration(s) pending"
        return warn(name, detail + " (run or migrate applies them)")
    return ok(name, f"{where}: schema version {version}, up to date")


def _sqlite(path: Path) -> list[Check]:
    folder = path.parent if path.parent.exists() else None
    if not path.exists():
        if folder is None or not os.access(folder, os.W_OK | os.X_OK):
            return [fail("state", f"{path}: its folder is missing or not writable", "state_path")]
        return [ok("state", f"{path}: does not exist yet; run creates it")]
    if not os.access(path, os.R_OK | os.W_OK) or not os.access(path.parent, os.W_OK):
        return [fail("state", f"{path}: not writable (it and its folder must be)", "state_path")]
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.Error as exc:
        return [fail("state", f"{path}: cannot read it as SQLite: {exc}", "state_path")]
    return [ok("state", f"{path}: writable"), _versions("state.schema", "sqlite", version,
                                                       str(path), "state_path")]  # fmt: skip


def _postgres(url: str) -> list[Check]:
    import psycopg  # the postgres extra: installed wherever state_url works

    try:
        with psycopg.connect(url, connect_timeout=5, autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()
            row = (
                conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
                if (exists and exists[0])
                else (0,)
            )
    except psycopg.Error as exc:
        return [fail("state", f"PostgreSQL: {str(exc).strip()}", "state_url")]
    version = int(row[0] or 0) if row else 0
    return [ok("state", "PostgreSQL reachable"),
            _versions("state.schema", "postgres", version, "PostgreSQL", "state_url")]  # fmt: skip
