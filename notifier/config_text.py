"""A config file's text before validation: YAML that refuses duplicate keys, and the
``${VAR}``, ``${VAR:-default}``, ``${file:/path}`` and ``${credential:NAME}`` references
expanded in every string (``$$`` is a literal ``$``), each problem with its key path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from notifier.channels.base import BEARER_HINT, DATASAUR_HINT, SIGNING_HINT
from notifier.problems import key_path

_VARIABLE = re.compile(
    r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*)|:(?P<ref>[^}]*))?\}"
)


class UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)  # type: ignore[no-untyped-call]
            if key in seen:
                line = key_node.start_mark.line + 1
                raise yaml.constructor.ConstructorError(
                    None, None, f"line {line}: duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_secret_file(kind: str, ref: str, environ: Mapping[str, str]) -> tuple[str, str | None]:
    """Read ``${file:/path}`` or ``${credential:NAME}``: ``(content, None)`` or ``("", problem)``.

    ``NAME`` is a file in ``$CREDENTIALS_DIRECTORY`` (systemd's ``LoadCredential=``). One
    trailing newline is stripped. A problem names the file, never its content.
    """
    if kind == "file":
        if not ref.startswith("/"):
            return "", f"${{file:{ref}}}: not an absolute path"
        path, what = Path(ref), f"file {ref}"
    elif kind == "credential":
        if not ref or ref in (".", "..") or "/" in ref:
            return "", f"${{credential:{ref}}}: not a credential name (a file name, no '/')"
        directory = environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            return "", (
                f"credential {ref!r}: $CREDENTIALS_DIRECTORY is not set"
                " (systemd sets it for LoadCredential=)"
            )
        path = Path(directory) / ref
        what = f"credential {ref!r} ({path})"
    else:
        return "", (
            f"unknown reference ${{{kind}:...}} (use ${{VAR}}, ${{VAR:-default}},"
            " ${file:/path} or ${credential:NAME}; $$ is a literal $)"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        return "", f"cannot read {what}: {exc.strerror or type(exc).__name__}"
    except UnicodeDecodeError:
        return "", f"cannot read {what}: not UTF-8 text"
    return text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text, None


def secret_hint(loc: tuple[Any, ...]) -> str:
    """How to make the value the key at ``loc`` needs."""
    names = [part for part in loc if isinstance(part, str)]
    if names[:1] == ["datasaur"]:
        return DATASAUR_HINT
    if names[:2] == ["api", "tokens"]:
        return BEARER_HINT
    if names and names[-1] in ("secret", "callback_secret"):
        return SIGNING_HINT
    return "write the value into it"


def expand_variables(
    value: Any, environ: Mapping[str, str], problems: list[str], loc: tuple[Any, ...] = ()
) -> Any:
    """Replace ``${VAR}``/``${VAR:-default}`` from ``environ`` and ``${file:/path}``/
    ``${credential:NAME}`` with a file's content in every string; ``$$`` is a literal ``$``.
    """
    if isinstance(value, dict):
        return {k: expand_variables(v, environ, problems, (*loc, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_variables(v, environ, problems, (*loc, i)) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default, ref = match.group("name", "default", "ref")
        if ref is not None:
            content, problem = read_secret_file(name, ref, environ)
            if problem is None and not content.strip():
                problem = f"${{{name}:{ref}}} is empty: {secret_hint(loc)}"
            if problem:
                problems.append(f"{key_path(loc)}: {problem}")
            return content
        if name in environ:
            return environ[name]
        if default is not None:
            return default
        problems.append(f"{key_path(loc)}: environment variable {name} is not set")
        return ""

    return _VARIABLE.sub(substitute, value)
