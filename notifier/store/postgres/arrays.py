"""One-dimensional arrays sent as binary parameters without a Python loop per element.

psycopg's own list dumper walks the list in Python, element by element (an append, a
length and a ``struct.pack`` each): for the poll writes' columns of a round, the largest
share of the client's CPU on the PostgreSQL poll path (BENCHMARKS.md, issue 25). A column
wrapped in one of these types is packed by one ``struct.pack`` call of a format made
for its length (and its NULLs), in C.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

# Element type oid, array type oid, struct code and width of each element type.
_TYPES = {
    "float8": (701, 1022, "d", 8),
    "int8": (20, 1016, "q", 8),
    "int4": (23, 1007, "i", 4),
    "bool": (16, 1000, "?", 1),
}
_HEADER = struct.Struct(">iiiii")  # dimensions, has NULLs, element oid, length, lower bound


class _Array(list[Any]):
    """A column of one element type (see the subclasses)."""

    element = ""


class Float8s(_Array):
    element = "float8"


class Int8s(_Array):
    element = "int8"


class Int4s(_Array):
    element = "int4"


class Bools(_Array):
    element = "bool"


class Texts(list[str | None]):
    """A column of strings (``text[]``)."""


@lru_cache(maxsize=64)
def _layout(code: str, count: int) -> struct.Struct:
    """A body of ``count`` elements without NULLs: per element its length and value."""
    return struct.Struct(">" + ("i" + code) * count)


@lru_cache(maxsize=64)
def _text_layout(lengths: tuple[int, ...]) -> struct.Struct:
    """A ``text[]`` body of strings of these lengths (a round's ids are much alike)."""
    return struct.Struct(">" + "".join(f"i{length}s" for length in lengths))


def _interleaved(lengths: Any, values: list[Any]) -> list[Any]:
    """``[length0, value0, length1, value1, ...]``, built by slice assignments (in C)."""
    fields: list[Any] = [0] * (2 * len(values))
    fields[0::2] = lengths
    fields[1::2] = values
    return fields


class _ArrayDumper(Dumper):
    format = Format.BINARY
    element = ""

    def dump(self, obj: Any) -> bytes:
        oid, _, code, width = _TYPES[self.element]
        head = _HEADER.pack(1, None in obj, oid, len(obj), 1)
        if None not in obj:  # most columns
            return head + _layout(code, len(obj)).pack(*_interleaved([width] * len(obj), obj))
        return head + b"".join(
            _NULL if v is None else struct.pack(f">i{code}", width, v) for v in obj
        )


_NULL = struct.pack(">i", -1)


def _dumper(element: str) -> type[Dumper]:
    attributes = {"oid": _TYPES[element][1], "element": element}
    return type(f"{element}ArrayDumper", (_ArrayDumper,), attributes)


class _TextsDumper(Dumper):
    format = Format.BINARY
    oid = 1009

    def dump(self, obj: Any) -> bytes:
        head = _HEADER.pack(1, None in obj, 25, len(obj), 1)
        if None in obj:  # e.g. a column of last errors, most of them none
            return head + b"".join(_NULL if v is None else _text(v.encode()) for v in obj)
        encoded = list(map(str.encode, obj))
        lengths = tuple(map(len, encoded))
        return head + _text_layout(lengths).pack(*_interleaved(lengths, encoded))


def _text(value: bytes) -> bytes:
    return struct.pack(">i", len(value)) + value


def register(adapters: psycopg.adapt.AdaptersMap) -> None:
    """Make these column types known to a connection (or to psycopg's global map)."""
    for cls in (Float8s, Int8s, Int4s, Bools):
        adapters.register_dumper(cls, _dumper(cls.element))
    adapters.register_dumper(Texts, _TextsDumper)
