"""Routes (issue 21.3): which callbacks a job without its own ``notify`` tells, chosen by
its labels when an event is recorded.

``routes:`` is evaluated in order: the first route whose ``match`` labels all equal the
job's gives its ``notify`` callbacks, and so does each following matching route while
the last one taken says ``continue: true``. No route matching: every callback, as
without routes. A job's explicit ``notify`` wins over routes. Routes are read from the
config in force when the event is recorded, so a reload (SIGHUP) applies to events
recorded after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, StrictStr, field_validator

from notifier import jobfields


class Route(BaseModel):
    """One entry of ``routes:``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    match: dict[StrictStr, StrictStr] = Field(min_length=1)
    notify: list[StrictStr] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue", strict=True)

    @field_validator("match")
    @classmethod
    def _label_keys(cls, value: dict[str, str]) -> dict[str, str]:
        problems = [p for key, wanted in value.items() if (p := jobfields.check_label(key, wanted))]
        if problems:
            raise ValueError("; ".join(problems))
        return value

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether every label of ``match`` is the job's."""
        return all(labels.get(key) == wanted for key, wanted in self.match.items())


def routed(routes: Sequence[Route], labels: Mapping[str, str]) -> list[str] | None:
    """The callbacks ``routes`` give a job with ``labels``, in order, each once; None
    when no route matches."""
    chosen: list[str] | None = None
    for route in routes:
        if not route.matches(labels):
            continue
        chosen = chosen or []
        chosen += [name for name in route.notify if name not in chosen]
        if not route.continue_:
            break
    return chosen
