"""A time zone of our own: a TZif file with one offset change at a chosen instant.

``zoneinfo`` reads zones from ``PYTHONTZPATH``; a daemon started with it set to the
directory :func:`write_zone` wrote to sees the zone as it would a system one, so a test
can put a daylight-saving change inside a quiet-hours window that is happening now.
"""

from __future__ import annotations

import struct
from pathlib import Path


def write_zone(directory: Path, name: str, change_at: int, before: int, after: int) -> Path:
    """Write zone ``name`` (UTC offset ``before`` seconds until ``change_at``, ``after``
    from then on) under ``directory``; returns the file."""
    abbreviations = b"OLD\0NEW\0"
    counts = (0, 0, 0, 1, 2, len(abbreviations))  # isut, isstd, leap, time, type, char
    data = (
        b"TZif" + b"\0" * 16 + struct.pack(">6l", *counts)
        + struct.pack(">l", change_at) + bytes([1])
        + struct.pack(">lBB", before, 0, 0) + struct.pack(">lBB", after, 1, 4)
        + abbreviations
    )  # fmt: skip
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
