"""How a config problem reads: ours, with its key path, not the validation library's.

``datasaur.batch_size: expected an integer, got 'fifty'``; an unknown key names the
closest known one (``polling.max_intervall: unknown key (did you mean max_interval?)``);
a YAML error points at the line where the unclosed quote or bracket opened.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from notifier.channels import REGISTRY
from notifier.events import JobStatus

# pydantic error type -> what was expected, said our way.
EXPECTED = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string (quote it)",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping (key: value)",
    "model_type": "a mapping (key: value)",
    "model_attributes_type": "a mapping (key: value)",
}
BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def key_path(loc: tuple[Any, ...]) -> str:
    """``("jobs", 0, "id")`` -> ``jobs[0].id``."""
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def validation_problems(exc: ValidationError, root: type[BaseModel]) -> list[str]:
    """One line per error of validating ``root``: ``key.path: message``."""
    problems = []
    for error in exc.errors():
        loc = _without_union_tag(error["loc"])
        if error["type"] == "invalid_key":
            loc = loc[:-1]  # pydantic puts the offending key itself (True -> 1) last
        message = message_of(error)
        if error["type"] == "extra_forbidden":
            message += _suggestion(str(error["loc"][-1]), known_keys(root, error["loc"][:-1]))
        path = key_path(loc)
        problems.append(f"{path}: {message}" if path else message)
    return problems


def message_of(error: Any) -> str:
    """One pydantic error (an item of ``errors()``) as our message, without its path."""
    kind, message = error["type"], str(error["msg"])
    given = error.get("input")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required"
    if kind == "enum":
        expected = ", ".join(status.value for status in JobStatus)
        return f"unknown status {given!r} (expected one of {expected})"
    if kind == "union_tag_invalid":
        return f"unknown callback type {given.get('type')!r} (known: {_known_types()})"
    if kind == "union_tag_not_found":
        return f"type: required (one of {_known_types()})"
    if kind == "invalid_key":
        return (
            f"key {given!r} is not a string (YAML reads unquoted on/off/yes/no"
            " as booleans: quote the key)"
        )
    if kind in EXPECTED:
        return f"expected {EXPECTED[kind]}, got {_shown(given)}"
    if kind == "literal_error":
        return f"expected {error['ctx']['expected']}, got {_shown(given)}"
    if kind in BOUNDS:
        key, words = BOUNDS[kind]
        return f"must be {words} {error['ctx'][key]}, got {_shown(given)}"
    if kind in ("too_short", "too_long"):
        return _length(kind, error.get("ctx", {}), given)
    return message.removeprefix("Value error, ")


def _shown(value: Any) -> str:
    """The value as it was given; a mapping or list by its kind (it may hold secrets)."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _length(kind: str, ctx: dict[str, Any], given: Any) -> str:
    what = "characters" if isinstance(given, str) else "items"
    if kind == "too_short":
        if ctx.get("min_length") == 1:
            return "must not be empty"
        return f"needs at least {ctx.get('min_length')} {what}"
    return f"at most {ctx.get('max_length')} {what}"


def _known_types() -> str:
    return ", ".join(sorted(REGISTRY))


def _without_union_tag(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Drop the discriminator pydantic inserts: ``callbacks.x.webhook.url`` -> ``...x.url``."""
    if len(loc) >= 3 and loc[0] == "callbacks" and loc[2] in REGISTRY:
        return loc[:2] + loc[3:]
    return loc


def _suggestion(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]}?)"
    return f" (known: {', '.join(known)})" if known else ""


def known_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys the model at ``loc`` (pydantic's, union tags included) accepts."""
    annotation: Any = root
    for part in loc:
        annotation = _unwrapped(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (list, tuple):
            annotation = typing.get_args(annotation)[0]
        elif typing.get_origin(annotation) is dict:
            annotation = typing.get_args(annotation)[1]
        elif part in REGISTRY:  # the discriminated union of callback types
            annotation = REGISTRY[part].Settings
        else:
            return []
    annotation = _unwrapped(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [field.alias or name for name, field in annotation.model_fields.items()]
    return []


def _unwrapped(annotation: Any) -> Any:
    """``Annotated[X, ...]`` and ``X | None`` -> ``X``."""
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(rest) != 1:
                return annotation
            annotation = rest[0]
        else:
            return annotation


QUOTED = "while scanning a quoted scalar"
FLOWS = {"while parsing a flow sequence": "[", "while parsing a flow mapping": "{"}


def yaml_problem(exc: yaml.YAMLError) -> str:
    """A YAML error at the line that matters: where an unclosed quote or bracket opened."""
    mark = getattr(exc, "problem_mark", None)
    opened = getattr(exc, "context_mark", None)
    context = getattr(exc, "context", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if opened is not None and mark is not None and (context == QUOTED or context in FLOWS):
        what = "quote" if context == QUOTED else f"'{FLOWS[str(context)]}'"
        return (
            f"line {opened.line + 1}, column {opened.column + 1}: YAML error: the {what}"
            f" opened here is never closed ({problem} at line {mark.line + 1})"
        )
    if mark is not None and "line" not in problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: YAML error: {problem}"
    return f"YAML error: {problem}"
