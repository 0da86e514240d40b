"""The poll writes' binary array columns (notifier/store/postgres/arrays.py) arrive in
PostgreSQL as the values they were made of: NULLs, empty columns, odd strings."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from notifier.store.postgres import arrays

CASES = [
    (arrays.Float8s([1.5, -0.25, 1.7e9 + 0.123]), "float8"),
    (arrays.Float8s([None, 2.0, None]), "float8"),
    (arrays.Float8s([]), "float8"),
    (arrays.Int8s([1, -(2**40), None]), "int8"),
    (arrays.Int4s([3, None, -7]), "int4"),
    (arrays.Bools([True, False, None]), "bool"),
    (arrays.Texts(["a", 'é,{x}"\\', "", "AutoLabelQueue:a/b"]), "text"),
    (arrays.Texts(["last error", None, "b"]), "text"),
    (arrays.Texts([]), "text"),
]


@pytest.mark.parametrize(("column", "kind"), CASES)
def test_a_column_arrives_as_it_was_made(postgres_url: str, column: list[Any], kind: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        arrays.register(conn.adapters)
        row = conn.execute(f"SELECT %b::{kind}[]", (column,)).fetchone()
    assert row is not None
    assert row[0] == list(column)
