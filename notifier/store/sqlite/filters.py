"""WHERE clauses built from optional filters, and keyset pagination."""

from __future__ import annotations

from typing import Any

from notifier.store.rows import Cursor


def filters(**conditions: str | None) -> tuple[str, list[Any]]:
    """``WHERE column = ? AND ...`` for the conditions given (None: no condition)."""
    pairs = [(column, value) for column, value in conditions.items() if value is not None]
    where = " AND ".join(f"{column} = ?" for column, _ in pairs)
    return (f" WHERE {where}" if where else ""), [value for _, value in pairs]


def keyset(
    where: str, params: list[Any], column: str, cursor: Cursor | None
) -> tuple[str, list[Any]]:
    """Keyset pagination: rows after ``(time, id)`` in ``(column, id)`` order."""
    if cursor is None:
        return where, params
    condition = f"({column}, id) > (?, ?)"
    return (f"{where} AND {condition}" if where else f" WHERE {condition}"), [*params, *cursor]
