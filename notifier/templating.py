"""Sandboxed Jinja2 templates for notification bodies and subjects.

Templates see the event payload's top-level keys (``type``, ``timestamp``, ``data``)
and, for convenience, every key of ``data`` directly (``job_id``, ``name``,
``status``, ...). JSON templates insert every value JSON-escaped, so a value cannot
break out of the string it is placed in; the rendered body must parse as JSON.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, Undefined
from jinja2.sandbox import SandboxedEnvironment


class TemplateProblem(ValueError):
    """A template that does not compile or does not render to what is required."""


def _json_escape(value: Any) -> str:
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
    return SandboxedEnvironment(undefined=StrictUndefined, finalize=finalize, autoescape=False)


def context(payload: dict[str, Any]) -> dict[str, Any]:
    """Variables a template sees for ``payload``."""
    return {**payload["data"], **payload}


def render_text(source: str, payload: dict[str, Any]) -> str:
    """Render a plain-text template."""
    try:
        return _environment(False).from_string(source).render(context(payload))
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except Exception as exc:  # e.g. {{ 1 / 0 }}: an error of the template, not of ours
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}") from None


def render_json(source: str, payload: dict[str, Any]) -> bytes:
    """Render a JSON template; the result must be valid JSON."""
    try:
        rendered = _environment(True).from_string(source).render(context(payload))
    except TemplateError as exc:
        raise TemplateProblem(f"template error: {exc}") from None
    except Exception as exc:  # e.g. {{ 1 / 0 }}: an error of the template, not of ours
        raise TemplateProblem(f"template error: {type(exc).__name__}: {exc}") from None
    try:
        json.loads(rendered)
    except ValueError as exc:
        raise TemplateProblem(f"template does not render valid JSON: {exc}") from None
    return rendered.encode()
