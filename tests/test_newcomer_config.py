"""Issue 19: secrets are honest when empty, and config errors say where and read as ours.

``check-config`` runs as a ``python -m notifier`` subprocess on files written here.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from notifier.signing import decode_secret

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
TOKEN = "t" * 43


def check(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> list[str]:
    """``check-config`` of ``text``: its stderr lines, without the file name (exit 2)."""
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    result = run("-c", str(path), "check-config", env=env)
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr and "pydantic" not in result.stderr
    return [line.removeprefix(f"{path}: ") for line in result.stderr.splitlines()]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "notifier", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


# --- secrets -----------------------------------------------------------------------


def test_an_empty_credential_or_file_is_an_error_naming_the_key(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "webhook-secret").write_text("\n")
    (credentials / "client-secret").write_text("")
    empty_file = tmp_path / "token"
    empty_file.write_text("   \n")
    problems = check(
        tmp_path,
        f"""
        datasaur: {{client_id: me, client_secret: "${{credential:client-secret}}"}}
        api:
          listen: 127.0.0.1:0
          tokens: [{{name: ci, token: "${{file:{empty_file}}}"}}]
        callbacks:
          hook: {{type: webhook, url: "http://h/", secret: "${{credential:webhook-secret}}"}}
        """,
        env={"CREDENTIALS_DIRECTORY": str(credentials), "PATH": "/usr/bin:/bin"},
    )
    assert sorted(problems) == sorted(
        [
            "datasaur.client_secret: ${credential:client-secret} is empty: Datasaur makes it:"
            " its profile menu, Generate OAuth credentials",
            f"api.tokens[0].token: ${{file:{empty_file}}} is empty: make one with"
            " `datasaur-notifier gen-token`",
            "callbacks.hook.secret: ${credential:webhook-secret} is empty: make one with"
            " `datasaur-notifier gen-secret`",
        ]
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            """
            datasaur: {token: "  "}
            """,
            "datasaur.token: empty: Datasaur makes it",
        ),
        (
            """
            datasaur: {token: x}
            callbacks:
              hook: {type: webhook, url: "http://127.0.0.1:9/", secret: "${HOOK_SECRET:-}"}
            """,
            "callbacks.hook.secret: empty: make one with `datasaur-notifier gen-secret`",
        ),
        (
            f"""
            datasaur: {{token: x}}
            callbacks:
              hook: {{type: webhook, url: "http://127.0.0.1:9/", secret: ["{WEBHOOK_SECRET}", " "]}}
            """,
            "callbacks.hook.secret[1]: empty: make one with `datasaur-notifier gen-secret`",
        ),
        (
            """
            datasaur: {token: x}
            api: {listen: "127.0.0.1:0", tokens: [{name: ci, token: ""}], callback_secret: ""}
            """,
            "api.tokens[0].token: empty: make one with `datasaur-notifier gen-token`",
        ),
        (
            """
            datasaur: {token: x}
            api: {listen: "127.0.0.1:0", tokens: [{name: ci, token: "TOKEN"}], callback_secret: ""}
            """.replace("TOKEN", TOKEN),
            "api.callback_secret: empty: make one with `datasaur-notifier gen-secret`",
        ),
    ],
    ids=["datasaur-token", "webhook-secret", "rotated-secret", "api-token", "callback-secret"],
)
def test_an_empty_or_blank_secret_is_an_error_saying_how_to_make_one(
    tmp_path: Path, text: str, problem: str
) -> None:
    problems = check(tmp_path, text, env={"PATH": "/usr/bin:/bin"})
    assert any(line.startswith(problem) for line in problems), problems


def test_gen_secret_and_gen_token_print_fresh_values_the_config_accepts(tmp_path: Path) -> None:
    secrets = {run("gen-secret").stdout.strip() for _ in range(2)}
    tokens = {run("gen-token").stdout.strip() for _ in range(2)}
    assert len(secrets) == len(tokens) == 2
    for secret in secrets:
        assert secret.startswith("whsec_") and len(decode_secret(secret)) == 32
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token), token
    secret, token = sorted(secrets)[0], sorted(tokens)[0]
    path = tmp_path / "config.yaml"
    path.write_text(
        "datasaur: {token: x}\n"
        f"api: {{listen: '127.0.0.1:0', tokens: [{{name: ci, token: '{token}'}}],"
        f" callback_secret: '{secret}'}}\n"
        f"callbacks: {{hook: {{type: webhook, url: 'http://127.0.0.1:9/', secret: '{secret}'}}}}\n"
    )
    result = run("-c", str(path), "check-config")
    assert result.returncode == 0, result.stderr


# --- errors that say where -----------------------------------------------------------


def test_type_errors_and_unknown_keys_read_as_ours(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
        datasaur: {token: x, batch_size: fifty}
        polling: {max_intervall: 5m, predictive: maybe}
        stat_path: /tmp/x
        callbacks:
          hook: {type: webhook, url: "http://127.0.0.1:9/", secrte: x}
        jobs:
          - {id: 5}
        """,
    )
    assert sorted(problems) == sorted(
        [
            "datasaur.batch_size: expected an integer, got 'fifty'",
            "polling.max_intervall: unknown key (did you mean max_interval?)",
            "polling.predictive: expected true or false, got 'maybe'",
            "stat_path: unknown key (did you mean state_path?)",
            "callbacks.hook.secrte: unknown key (did you mean secret?)",
            "jobs[0].id: expected a string (quote it), got 5",
        ]
    )


def test_a_url_with_a_space_or_a_bad_port_is_an_error_showing_it(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """
        datasaur: {token: x, graphql_url: "https://datasaur.example.com/graph ql"}
        callbacks:
          hook: {type: webhook, url: "https://user:hunter2@hooks.example.com/a<b"}
          other: {type: webhook, url: "https://hooks.example.com:99999/"}
        """,
    )
    assert sorted(problems) == sorted(
        [
            "datasaur.graphql_url: not a valid URL: 'https://datasaur.example.com/graph ql' has"
            " ' ' at position 35 (percent-encode it, e.g. a space as %20)",
            "callbacks.hook.url: not a valid URL: 'https://user:***@hooks.example.com/a<b' has"
            " '<' at position 37 (percent-encode it, e.g. a space as %20)",
            "callbacks.other.url: not a valid URL: 'https://hooks.example.com:99999/': bad port",
        ]
    )


def test_an_unclosed_quote_points_at_the_line_where_it_opened(tmp_path: Path) -> None:
    problems = check(
        tmp_path,
        """\
        datasaur:
          token: x
          graphql_url: "https://app.datasaur.ai/graphql
        polling:
          interval: 30s
        """,
    )
    assert problems == [
        "line 3, column 16: YAML error: the quote opened here is never closed"
        " (found unexpected end of stream at line 6)"
    ]
