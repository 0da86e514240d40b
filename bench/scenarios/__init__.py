"""The scenarios: one module each, found by name, run in the order of their ``ORDER``.

A scenario module registers what it runs with :func:`scenario`, and may add rows to the
table and figures derived from several results::

    ORDER = 45  # when it runs, and where its rows show (default: after the numbered ones)
    ROWS = [Row("Some figure", "some_key.figure", target="< 5")]  # its lines of the table

    @scenario("some")  # the name ``--only`` takes
    def run(root: Path, sizes: Sizes, step: Step) -> None:
        step("some_key", lambda: measure_it(root, sizes))

    def derive(run: dict[str, Any]) -> None:  # after every scenario of a run
        ...

``step(key, func)`` runs ``func``, logs how long it took and keeps the dict it returns
under ``key`` in the run's results. A module may register several names (cluster:
``cluster`` and ``claims``); they run in the order they are registered. ``derive`` hooks
run in module order once the run's scenarios are done: throughput's adds the CPU ratio
naive / daemon, cluster's the same on PostgreSQL, delivery's the delivery ratio with a
slow callback.

A module imports what only it needs (psycopg, say) inside its functions, so that the
other scenarios run without it.
"""

from __future__ import annotations

import functools
import importlib
import math
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.harness import Sizes
from bench.report import Row

Step = Callable[[str, Callable[[], dict[str, Any]]], None]
Runner = Callable[[Path, Sizes, Step], None]
Derive = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Runner
    module: str


_registered: dict[str, Scenario] = {}


def scenario(name: str) -> Callable[[Runner], Runner]:
    """Register the decorated function as the scenario ``name``."""

    def register(run: Runner) -> Runner:
        if name in _registered:
            raise ValueError(f"two scenarios named {name!r}")
        _registered[name] = Scenario(name, run, run.__module__)
        return run

    return register


@functools.cache
def modules() -> tuple[ModuleType, ...]:
    """Every scenario module, imported, by ``ORDER`` and then by name."""
    found = [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in pkgutil.iter_modules(__path__)
        if not info.name.startswith("_")
    ]
    return tuple(sorted(found, key=lambda m: (getattr(m, "ORDER", math.inf), m.__name__)))


def load() -> list[Scenario]:
    """Every scenario, in the order they run."""
    place = {module.__name__: index for index, module in enumerate(modules())}
    return sorted(_registered.values(), key=lambda s: place[s.module])


def names() -> list[str]:
    return [s.name for s in load()]


def rows() -> list[Row]:
    """The table's rows: each module's ``ROWS`` in module order, ``last`` rows at the end."""
    collected = [row for module in modules() for row in getattr(module, "ROWS", ())]
    return sorted(collected, key=lambda row: row.last)


def derivations() -> list[Derive]:
    """Each module's ``derive`` hook, in module order."""
    return [module.derive for module in modules() if hasattr(module, "derive")]
