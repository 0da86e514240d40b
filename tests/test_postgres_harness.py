"""The PostgreSQL test harness itself: the server answers, databases are isolated, restarts."""

from __future__ import annotations

import psycopg
import pytest

from tests.support.postgres import PostgresServer


def test_server_answers_select_1(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.info.server_version >= 130000


def test_each_test_database_is_fresh_and_isolated(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    other = "t_harness_other"
    postgres_server.drop_database(other)
    other_url = postgres_server.create_database(other)
    # Held open on purpose: dropping the database must end this connection.
    lingering = psycopg.connect(other_url, autocommit=True)
    try:
        with psycopg.connect(postgres_url, autocommit=True) as mine:
            mine.execute("CREATE TABLE jobs (id text PRIMARY KEY)")
            mine.execute("INSERT INTO jobs VALUES ('a')")
            with pytest.raises(psycopg.errors.UndefinedTable):
                lingering.execute("SELECT * FROM jobs")
            lingering.execute("CREATE TABLE jobs (id text PRIMARY KEY)")
            assert lingering.execute("SELECT count(*) FROM jobs").fetchone() == (0,)
            assert mine.execute("SELECT count(*) FROM jobs").fetchone() == (1,)
    finally:
        postgres_server.drop_database(other)
    with pytest.raises(psycopg.OperationalError):
        lingering.execute("SELECT 1")
    lingering.close()
    with postgres_server.connect() as admin:
        row = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [other]).fetchone()
    assert row is None


def test_restart_ends_connections_and_new_ones_succeed(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    if not postgres_server.controllable:
        pytest.skip("cannot restart the external PostgreSQL server given by the environment")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (n int)")
        conn.execute("INSERT INTO kept VALUES (42)")
        postgres_server.restart()
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
    with psycopg.connect(postgres_url) as conn:
        assert conn.execute("SELECT n FROM kept").fetchone() == (42,)


def test_stop_then_start_is_an_outage_on_the_same_port(
    postgres_server: PostgresServer, postgres_url: str
) -> None:
    if not postgres_server.controllable:
        pytest.skip("cannot stop the external PostgreSQL server given by the environment")
    postgres_server.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(postgres_url, connect_timeout=2)
    finally:
        postgres_server.start()
    # start() returned only once the server accepts connections again.
    with psycopg.connect(postgres_url, connect_timeout=2) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
