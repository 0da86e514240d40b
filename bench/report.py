"""The results: medians over the runs, the figures table, the machine they ran on.

The table's rows come from the scenario modules (each one's ``ROWS``, collected in order by
:func:`bench.scenarios.rows`); a row shows whatever figure of the medians it names, so a
row may compare the results of several scenarios.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import statistics
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, inner in value.items():
            flat.update(_flatten(inner, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: value}


def medians(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The median of every numeric figure over the runs (booleans: all runs true)."""
    flats = [_flatten(run) for run in runs]
    keys = dict.fromkeys(key for flat in flats for key in flat)
    result: dict[str, Any] = {}
    for key in keys:
        values = [flat.get(key) for flat in flats]
        if all(isinstance(v, bool) for v in values):
            result[key] = all(values)
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
            result[key] = statistics.median(values)  # type: ignore[type-var]
    return result


@dataclass(frozen=True)
class Row:
    """One line of the table: ``daemon`` and ``naive`` name figures of the medians.

    A row whose ``daemon`` figure is missing (its scenario did not run) is left out.
    ``last`` rows close the table, after every scenario's other rows.
    """

    label: str
    daemon: str | None
    naive: str | None = None
    target: str = ""
    check: Callable[[dict[str, Any]], bool | None] | None = None
    fmt: str = "{:.1f}"
    last: bool = False


def _get(m: dict[str, Any], key: str | None) -> Any:
    return None if key is None else m.get(key)


def table(m: dict[str, Any], layout: Sequence[Row]) -> tuple[str, list[dict[str, Any]]]:
    """The figures as a text table, and as rows for the JSON."""
    rows: list[dict[str, Any]] = []
    for row in layout:
        daemon, naive = _get(m, row.daemon), _get(m, row.naive)
        if daemon is None:
            continue
        met: bool | None = None
        if row.check is not None:
            try:
                met = bool(row.check(m))
            except (KeyError, TypeError):
                met = None
        rows.append(
            {
                "figure": row.label,
                "daemon": daemon,
                "naive": naive,
                "target": row.target,
                "met": met,
                "text": (
                    row.fmt.format(daemon),
                    "" if naive is None else row.fmt.format(naive),
                ),
            }
        )
    headers = ("Figure", "daemon", "naive", "target", "met")
    lines = [
        (r["figure"], r["text"][0], r["text"][1], r["target"],
         {True: "yes", False: "NO", None: ""}[r["met"]])
        for r in rows
    ]  # fmt: skip
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(headers)]
    out = [
        "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)),
        "  ".join("-" * w for w in widths),
    ]
    for line in lines:
        out.append("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)))
    for r in rows:
        del r["text"]
    return "\n".join(out), rows


def machine() -> dict[str, Any]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    nproc = subprocess.run(["nproc"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "nproc": int(nproc or os.cpu_count() or 0),
        "cpu": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
    }
