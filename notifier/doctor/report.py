"""A doctor check's result, and how the results are printed."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Literal

from notifier.logs import scrub

Result = Literal["ok", "warn", "FAIL"]


@dataclass(frozen=True)
class Check:
    """One line of the doctor's report: what was checked, how it went, what it found,
    and for a problem what to change (a config key path)."""

    name: str
    result: Result
    detail: str
    fix: str | None = None


def ok(name: str, detail: str) -> Check:
    """A check that passed."""
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str | None = None) -> Check:
    """A check that passed with a caveat."""
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str | None = None) -> Check:
    """A check that failed."""
    return Check(name, "FAIL", detail, fix)


def failed(checks: Sequence[Check]) -> bool:
    """Whether any check FAILed."""
    return any(check.result == "FAIL" for check in checks)


def _clean(check: Check) -> Check:
    """``check`` with every secret the config holds scrubbed from its text."""
    fix = None if check.fix is None else scrub(check.fix)
    return Check(check.name, check.result, scrub(check.detail), fix)


def line(check: Check) -> str:
    """``ok   datasaur.token: ... (fix: datasaur.client_secret)``."""
    check = _clean(check)
    fix = f" (fix: {check.fix})" if check.fix else ""
    return f"{check.result:<4} {check.name}: {check.detail}{fix}"


def document(checks: Sequence[Check]) -> str:
    """``{"checks": [{"name", "result", "detail", "fix"}]}``."""
    return json.dumps({"checks": [asdict(_clean(check)) for check in checks]}, indent=2)
