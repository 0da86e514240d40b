"""Sandboxed Jinja2 templates for notification bodies and subjects.

Templates see the event payload's top-level keys (``type``, ``timestamp``, ``data``)
and, for convenience, every key of ``data`` directly (``job_id``, ``name``,
``status``, ...); a digest's also ``digest`` and ``events``. JSON templates insert
every value JSON-escaped, so a value cannot break out of the string it is placed in
(``| tojson`` inserts a whole JSON value instead); the rendered body must parse as JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment


class TemplateProblem(ValueError):
    """A template that does not compile or does not render to what is required."""


class _RawJson(str):
    """Output of the ``tojson`` filter: already JSON, inserted as is."""


def _to_json(value: Any) -> _RawJson:
    return _RawJson(json.dumps(value))


def _json_escape(value: Any) -> str:
    if isinstance(value, _RawJson):
        return value
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value
    elif isinstance(value, Undefined):
        text = str(value)  # StrictUndefined: raises UndefinedError, a TemplateError
    else:
        try:
            text = json.dumps(value)
        except (TypeError, ValueError):  # e.g. {{ range(3) }}: not JSON, inserted as text
            text = str(value)
    return json.dumps(text)[1:-1]


@lru_cache(maxsize=2)
def _environment(json_escaped: bool) -> SandboxedEnvironment:
    finalize = _json_escape if json_escaped else None
    env = SandboxedEnvironment(undefined=StrictUndefined, finalize=finalize, autoescape=False)
    if json_escaped:
        env.filters["tojson"] = _to_json
    return env


def context(payload: dict[str, Any]) -> dict[str, Any]:
    """Variables a template sees for ``payload`` (a digest's: also ``digest`` and
    ``events``, see :func:`notifier.digests.template_context`)."""
    if payload.get("type") == "digest":
        from notifier.digests import template_context

        return template_context(payload)
    return {**payload["data"], **payload}


def _render(source: str, payload: dict[str, Any], json_escaped: bool) -> str:
    try:
        return _environment(json_escaped).from_string(source).render(context(payload))
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except Exception as exc:  # e.g. {{ 1 / 0 }}: an error of the template, not of ours
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}") from None


def render_text(source: str, payload: dict[str, Any]) -> str:
    """Render a plain-text template."""
    return _render(source, payload, json_escaped=False)


def render_json(source: str, payload: dict[str, Any]) -> bytes:
    """Render a JSON template; the result must be valid JSON.

    ``{{ value }}`` inserts the value JSON-escaped (for use inside quotes);
    ``{{ value | tojson }}`` inserts it as a JSON document (objects, lists, numbers).
    """
    rendered = _render(source, payload, json_escaped=True)
    try:
        json.loads(rendered)
    except ValueError as exc:
        raise TemplateProblem(f"template does not render valid JSON: {exc}") from None
    return rendered.encode()
