"""The config file: schema, defaults, ``${VAR}`` expansion and one line per problem."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from pydantic import SecretStr

from notifier import logs
from notifier.config import ConfigError, load_config, parse_config, secrets_of, silent_jobs

MINIMAL = """
datasaur:
  token: tok-123
"""

FULL = """
datasaur:
  graphql_url: http://127.0.0.1:8080/graphql
  client_id: ${CLIENT_ID}
  client_secret: ${CLIENT_SECRET}
  timeout: 500ms
  batch_size: 20
state_path: ${STATE_DIR:-/tmp/notifier-test}/state.db
polling:
  interval: 0.2s
  max_interval: 5m
  expire_after: 7d
delivery:
  timeout: 10
  initial_backoff: 5s
  max_backoff: 1h
  give_up_after: 72h
callbacks:
  ops-hook:
    type: webhook
    url: https://hooks.example.com/datasaur
    secret: ${WEBHOOK_SECRET}
    headers: {X-Team: data}
  team-mail:
    type: email
    smtp_host: smtp.example.com
    smtp_port: 587
    security: starttls
    username: ${SMTP_USER}
    password: ${SMTP_PASSWORD}
    from: notifier@example.com
    to: [ml-team@example.com]
jobs:
  - id: "AutoLabelQueue:dcbf6ed3-3841-46c1-8f6a-2affb53ac637"
    name: autolabel batch 12
    notify: [ops-hook, team-mail]
    on_status: [DELIVERED, FAILED]
  - id: "ExportQueue:1"
    on_status: [IN_PROGRESS]
"""

ENV = {
    "CLIENT_ID": "cid",
    "CLIENT_SECRET": "client-secret-value",
    "WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    "SMTP_USER": "mailer",
    "SMTP_PASSWORD": "smtp-password-value",
}


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    """The problems ``parse_config`` reports for ``text`` (fails if it is accepted)."""
    with pytest.raises(ConfigError) as caught:
        parse_config(textwrap.dedent(text), "cfg.yaml", environ or {})
    assert caught.value.problems, "ConfigError without problems"
    return caught.value.problems


def with_token(body: str) -> str:
    return "datasaur: {token: t}\n" + textwrap.dedent(body)


# --- accepted configs ----------------------------------------------------------------


def test_minimal_config_gets_the_documented_defaults() -> None:
    config = parse_config(MINIMAL, environ={})
    assert config.datasaur.graphql_url == "https://app.datasaur.ai/graphql"
    assert config.datasaur.effective_token_url == "https://app.datasaur.ai/api/oauth/token"
    assert config.datasaur.timeout == 10
    assert config.datasaur.batch_size == 50
    assert config.state_path == Path("/var/lib/datasaur-notifier/state.db")
    assert (config.polling.interval, config.polling.max_interval) == (30, 300)
    assert config.polling.expire_after == 7 * 86400
    assert config.delivery.timeout == 10
    assert config.delivery.initial_backoff == 5
    assert config.delivery.max_backoff == 3600
    assert config.delivery.give_up_after == 72 * 3600
    assert config.callbacks == {}
    assert config.jobs == []


def test_full_example_is_parsed() -> None:
    config = parse_config(FULL, environ=ENV)
    assert config.datasaur.client_id == "cid"
    assert config.datasaur.client_secret == SecretStr("client-secret-value")
    assert config.datasaur.timeout == pytest.approx(0.5)
    assert config.datasaur.effective_token_url == "http://127.0.0.1:8080/api/oauth/token"
    assert config.state_path == Path("/tmp/notifier-test/state.db")
    assert config.polling.interval == pytest.approx(0.2)
    assert config.polling.max_interval == 300
    assert config.delivery.timeout == 10
    assert config.delivery.give_up_after == 72 * 3600
    hook = config.callback("ops-hook")
    assert hook.type == "webhook"
    assert hook.headers == {"X-Team": "data"}  # type: ignore[attr-defined]
    mail = config.callback("team-mail")
    assert mail.from_ == "notifier@example.com"  # type: ignore[attr-defined]
    first, second = config.jobs
    assert first.id == "AutoLabelQueue:dcbf6ed3-3841-46c1-8f6a-2affb53ac637"
    assert first.notify == ["ops-hook", "team-mail"]
    assert [str(s) for s in first.on_status] == ["DELIVERED", "FAILED"]
    assert second.notify is None
    assert [str(s) for s in second.on_status] == ["IN_PROGRESS"]


def test_job_defaults_to_delivered_and_failed() -> None:
    config = parse_config(with_token("jobs: [{id: 'j1'}]"), environ={})
    assert [str(s) for s in config.jobs[0].on_status] == ["DELIVERED", "FAILED"]
    assert config.jobs[0].name is None


def test_explicit_token_url_is_kept() -> None:
    text = "datasaur: {token: t, token_url: 'http://auth.local/oauth'}"
    assert parse_config(text, environ={}).datasaur.effective_token_url == "http://auth.local/oauth"


def test_empty_file_needs_credentials_only() -> None:
    assert problems("") == ["datasaur: required"]


# --- ${VAR} expansion ----------------------------------------------------------------


def test_variable_default_is_used_when_unset() -> None:
    text = "datasaur: {token: '${TOKEN:-fallback}'}\nstate_path: ${DIR:-/srv}/s.db"
    config = parse_config(text, environ={})
    assert config.datasaur.token == SecretStr("fallback")
    assert config.state_path == Path("/srv/s.db")


def test_variable_from_the_environment_wins_over_the_default() -> None:
    text = "datasaur: {token: '${TOKEN:-fallback}'}"
    config = parse_config(text, environ={"TOKEN": "real"})
    assert config.datasaur.token == SecretStr("real")


def test_empty_default_and_literal_dollar() -> None:
    text = "datasaur: {token: 'a$$b${X:-}c'}"
    assert parse_config(text, environ={}).datasaur.token == SecretStr("a$bc")


def test_variables_expand_inside_lists_and_nested_keys() -> None:
    text = with_token(
        """
        callbacks:
          mail:
            type: email
            smtp_host: ${SMTP_HOST}
            from: a@example.com
            to: ["${TEAM}@example.com"]
        """
    )
    config = parse_config(text, environ={"SMTP_HOST": "mx.local", "TEAM": "ml"})
    mail = config.callback("mail")
    assert mail.smtp_host == "mx.local"  # type: ignore[attr-defined]
    assert mail.to == ["ml@example.com"]  # type: ignore[attr-defined]


def test_environment_is_used_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_TEST_TOKEN", "from-env")
    config = parse_config("datasaur: {token: '${NOTIFIER_TEST_TOKEN}'}")
    assert config.datasaur.token == SecretStr("from-env")


def test_unset_variable_is_an_error_naming_it_and_its_key() -> None:
    found = problems(FULL, {k: v for k, v in ENV.items() if k != "WEBHOOK_SECRET"})
    assert found == ["callbacks.ops-hook.secret: environment variable WEBHOOK_SECRET is not set"]


def test_every_unset_variable_is_reported() -> None:
    found = problems(FULL, {})
    names = ["CLIENT_ID", "CLIENT_SECRET", "WEBHOOK_SECRET", "SMTP_USER", "SMTP_PASSWORD"]
    for name in names:
        assert sum(name + " is not set" in line for line in found) == 1, found


def test_variables_are_not_expanded_in_keys_or_recursively() -> None:
    config = parse_config("datasaur: {token: '${A}'}", environ={"A": "${B}", "B": "x"})
    assert config.datasaur.token == SecretStr("${B}")


# --- problems, one line each with the key path ---------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (with_token("polling: {intervall: 5s}"), "polling.intervall: unknown key"),
        (with_token("colbacks: {}"), "colbacks: unknown key"),
        (
            with_token("callbacks: {h: {type: webhook, url: 'http://x', secrt: s}}"),
            "callbacks.h.secrt: unknown key",
        ),
        (with_token("jobs: [{id: j, nofity: [a]}]"), "jobs[0].nofity: unknown key"),
        (with_token("polling: {interval: 5 minutes}"), "polling.interval: not a duration"),
        (with_token("delivery: {timeout: -1}"), "delivery.timeout: must not be negative"),
        (with_token("polling: {interval: 0}"), "polling.interval:"),
        (
            with_token("callbacks: {h: {type: webhook, url: 'ftp://x'}}"),
            "callbacks.h.url: not an http(s) URL",
        ),
        (
            with_token("callbacks: {h: {type: webhook, url: 'hooks.example.com'}}"),
            "callbacks.h.url: not an http(s) URL",
        ),
        ("datasaur: {token: t, graphql_url: 'localhost:8080'}", "datasaur.graphql_url: not an"),
        (
            with_token(
                "callbacks: {h: {type: webhook, url: 'http://x'}}\njobs: [{id: j, notify: [hook]}]"
            ),
            "jobs[0].notify[0]: unknown callback 'hook' (known: h)",
        ),
        (with_token("jobs: [{id: j}, {id: k}, {id: j}]"), "jobs[2].id: duplicate job id 'j'"),
        (with_token("jobs: [{id: '  '}]"), "jobs[0].id: job id must not be empty"),
        (with_token("jobs: [{id: ''}]"), "jobs[0].id: job id must not be empty"),
        (with_token("jobs: [{name: x}]"), "jobs[0].id: required"),
        (with_token("jobs: [{id: j, on_status: [DONE]}]"), "jobs[0].on_status[0]: unknown status"),
        (with_token("jobs: [{id: j, on_status: []}]"), "jobs[0].on_status:"),
        (with_token("jobs: [{id: 1.10}]"), "jobs[0].id:"),
        (with_token("callbacks: {h: {type: sms}}"), "unknown callback type 'sms'"),
        (with_token("callbacks: {h: {url: 'http://x'}}"), "callbacks.h: type: required"),
        (
            with_token("callbacks: {h: {type: webhook, url: 'http://x', secret: nope}}"),
            "callbacks.h.secret: ",
        ),
        ("datasaur: {}", "datasaur: credentials"),
        ("datasaur: {token: t, client_id: a, client_secret: b}", "datasaur: give either"),
        ("datasaur: {token: t}\npolling: {interval: 10s, max_interval: 5s}", "max_interval"),
        ("- a\n- b\n", "must be a mapping"),
    ],
)
def test_problem_is_named(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in line for line in found), found
    assert all("\n" not in line for line in found)


def test_on_is_not_a_key_yaml_11_pitfall() -> None:
    # Unquoted ``on`` is a boolean in YAML 1.1; it must not be silently ignored.
    found = problems(with_token("jobs: [{id: j, on: [DELIVERED]}]"))
    assert found == [
        "jobs[0]: key True is not a string"
        " (YAML reads unquoted on/off/yes/no as booleans: quote the key)"
    ]


def test_yaml_syntax_error_names_its_line() -> None:
    text = "datasaur:\n  token: t\npolling:\n  interval: [5s\n"
    [found] = problems(text)
    assert "line " in found and "YAML" in found


def test_yaml_syntax_error_line_is_the_right_one() -> None:
    text = "datasaur:\n  token: t\njobs:\n  - id: a\n   name: b\n"
    [found] = problems(text)
    assert "line 5" in found, found


def test_duplicate_yaml_key_is_reported_with_its_line() -> None:
    [found] = problems("datasaur: {token: t}\npolling: {}\npolling: {}\n")
    assert "line 3" in found and "duplicate key 'polling'" in found


def test_every_problem_is_reported_at_once() -> None:
    text = """
    datasaur: {token: t, timeout: soon}
    polling: {intervall: 5s}
    callbacks:
      h: {type: webhook, url: 'ftp://x'}
    jobs:
      - {id: a, notify: [nope], on_status: [DONE]}
      - {id: a}
      - {id: ''}
    """
    found = problems(text)
    expected = [
        "datasaur.timeout: not a duration",
        "polling.intervall: unknown key",
        "callbacks.h.url: not an http(s) URL",
        "jobs[0].notify[0]: unknown callback 'nope'",
        "jobs[0].on_status[0]: unknown status",
        "jobs[1].id: duplicate job id 'a'",
        "jobs[2].id: job id must not be empty",
    ]
    for piece in expected:
        assert sum(piece in line for line in found) == 1, (piece, found)


def test_problems_do_not_echo_secret_values() -> None:
    text = """
    datasaur: {client_id: a, client_secret: 'client-secret-xyz', token: 'token-value-xyz'}
    callbacks:
      h: {type: webhook, url: 'http://x', secret: 'not-a-whsec-secret-xyz'}
    """
    found = "\n".join(problems(text))
    for secret in ("client-secret-xyz", "token-value-xyz", "not-a-whsec-secret-xyz"):
        assert secret not in found


def test_email_username_needs_password() -> None:
    text = with_token(
        "callbacks: {m: {type: email, smtp_host: h, from: a@b.c, to: [x@y.z], username: u}}"
    )
    assert any("username and password go together" in line for line in problems(text))


def test_email_needs_valid_addresses() -> None:
    text = with_token("callbacks: {m: {type: email, smtp_host: h, from: nobody, to: []}}")
    found = problems(text)
    assert any(line.startswith("callbacks.m.from:") for line in found), found
    assert any(line.startswith("callbacks.m.to:") for line in found), found


# --- files and secrets ---------------------------------------------------------------


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(MINIMAL)
    assert load_config(path, environ={}).datasaur.token == SecretStr("tok-123")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.source == str(path)
    assert caught.value.problems == ["cannot read the config file: No such file or directory"]


def test_secrets_are_secret_str_and_listed() -> None:
    config = parse_config(FULL, environ=ENV)
    dumped = repr(config) + str(config.model_dump())
    for name in ("CLIENT_SECRET", "WEBHOOK_SECRET", "SMTP_PASSWORD"):
        assert ENV[name] not in dumped
    assert set(secrets_of(config)) == {
        ENV["CLIENT_SECRET"],
        ENV["WEBHOOK_SECRET"],
        ENV["SMTP_PASSWORD"],
    }


def test_example_config_is_valid(tmp_path: Path) -> None:
    """With the credentials the systemd unit loads, and nothing else from the environment."""
    example = Path(__file__).resolve().parent.parent / "config.example.yaml"
    if not example.exists():
        pytest.skip("config.example.yaml not written yet")
    (tmp_path / "datasaur-client-secret").write_text("client-secret-value\n")
    (tmp_path / "webhook-secret").write_text(ENV["WEBHOOK_SECRET"] + "\n")
    config = load_config(example, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.callbacks
    assert set(secrets_of(config)) == {"client-secret-value", ENV["WEBHOOK_SECRET"]}


# --- ${file:/path} and ${credential:NAME} --------------------------------------------

FILE_SECRET = "client-secret-from-a-file"


def test_file_reference_is_replaced_by_the_content_without_one_trailing_newline(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text(FILE_SECRET + "\n")
    (tmp_path / "two").write_text("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\r\n")
    (tmp_path / "id").write_text("cid\n\n")
    text = f"""
    datasaur:
      client_id: 'x-${{file:{tmp_path}/id}}'
      client_secret: '${{file:{tmp_path}/token}}'
    callbacks:
      h: {{type: webhook, url: 'http://x', secret: '${{file:{tmp_path}/two}}'}}
    """
    config = parse_config(textwrap.dedent(text), environ={})
    assert config.datasaur.client_secret == SecretStr(FILE_SECRET)
    assert config.datasaur.client_id == "x-cid\n"  # only one newline is stripped
    hook = config.callback("h")
    assert hook.secret == (SecretStr(ENV["WEBHOOK_SECRET"]),)  # type: ignore[attr-defined]


def test_credential_reference_reads_from_the_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "datasaur-client-secret").write_text(FILE_SECRET)
    text = "datasaur: {client_id: a, client_secret: '${credential:datasaur-client-secret}'}"
    config = parse_config(text, environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert config.datasaur.client_secret == SecretStr(FILE_SECRET)


def test_file_content_is_not_expanded_again(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("${HOME} $$")
    config = parse_config(f"datasaur: {{token: '${{file:{tmp_path}/t}}'}}", environ={"HOME": "h"})
    assert config.datasaur.token == SecretStr("${HOME} $$")


@pytest.mark.parametrize(
    ("reference", "environ", "expected"),
    [
        ("${file:secrets/token}", {}, "${file:secrets/token}: not an absolute path"),
        ("${file:}", {}, "${file:}: not an absolute path"),
        ("${file:{dir}/absent}", {}, "cannot read file {dir}/absent: No such file or directory"),
        ("${file:{dir}}", {}, "cannot read file {dir}: Is a directory"),
        ("${file:{dir}/binary}", {}, "cannot read file {dir}/binary: not UTF-8 text"),
        (
            "${credential:token}",
            {},
            "credential 'token': $CREDENTIALS_DIRECTORY is not set"
            " (systemd sets it for LoadCredential=)",
        ),
        (
            "${credential:absent}",
            {"CREDENTIALS_DIRECTORY": "{dir}"},
            "cannot read credential 'absent' ({dir}/absent): No such file or directory",
        ),
        (
            "${credential:../token}",
            {"CREDENTIALS_DIRECTORY": "{dir}"},
            "${credential:../token}: not a credential name (a file name, no '/')",
        ),
        (
            "${credential:..}",
            {"CREDENTIALS_DIRECTORY": "{dir}"},
            "${credential:..}: not a credential name (a file name, no '/')",
        ),
        ("${vault:token}", {}, "unknown reference ${vault:...}"),
    ],
)
def test_unreadable_secret_file_is_one_problem_naming_key_and_file(
    tmp_path: Path, reference: str, environ: dict[str, str], expected: str
) -> None:
    (tmp_path / "token").write_text(FILE_SECRET)
    (tmp_path / "binary").write_bytes(b"\xff\xfe" + FILE_SECRET.encode())
    directory = str(tmp_path)
    reference = reference.replace("{dir}", directory)
    environ = {k: v.replace("{dir}", directory) for k, v in environ.items()}
    text = f"datasaur: {{client_id: a, client_secret: '{reference}'}}"
    found = problems(text, environ)
    assert len(found) == 1, found
    assert found[0].startswith("datasaur.client_secret: " + expected.replace("{dir}", directory))
    assert FILE_SECRET not in found[0]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_file_without_read_permission_is_a_problem(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text(FILE_SECRET)
    secret.chmod(0)
    found = problems(f"datasaur: {{token: '${{file:{secret}}}'}}")
    assert found == [f"datasaur.token: cannot read file {secret}: Permission denied"]


def test_file_refused_by_the_os_is_a_problem(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same as above wherever the tests run as root (the OS error is simulated)."""
    secret = tmp_path / "token"
    secret.write_text(FILE_SECRET)
    read_text = Path.read_text

    def refuse(path: Path, *args: object, **kwargs: object) -> str:
        if path == secret:
            raise PermissionError(13, "Permission denied", str(path))
        return read_text(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", refuse)
    found = problems(f"datasaur: {{token: '${{file:{secret}}}'}}")
    assert found == [f"datasaur.token: cannot read file {secret}: Permission denied"]


def test_every_unreadable_file_is_reported_once(tmp_path: Path) -> None:
    text = f"""
    datasaur: {{client_id: a, client_secret: '${{credential:cs}}'}}
    callbacks:
      h:
        type: webhook
        url: http://x
        secret: ['${{file:{tmp_path}/new}}', '${{file:{tmp_path}/old}}']
    """
    found = problems(text)
    assert found == [
        "datasaur.client_secret: credential 'cs': $CREDENTIALS_DIRECTORY is not set"
        " (systemd sets it for LoadCredential=)",
        f"callbacks.h.secret[0]: cannot read file {tmp_path}/new: No such file or directory",
        f"callbacks.h.secret[1]: cannot read file {tmp_path}/old: No such file or directory",
    ]


def test_secrets_read_from_files_are_listed_and_redacted(tmp_path: Path) -> None:
    (tmp_path / "cs").write_text(FILE_SECRET + "\n")
    (tmp_path / "hook").write_text(ENV["WEBHOOK_SECRET"] + "\n")
    text = f"""
    datasaur: {{client_id: a, client_secret: '${{credential:cs}}'}}
    callbacks:
      h: {{type: webhook, url: 'http://x', secret: '${{file:{tmp_path}/hook}}'}}
    """
    config = parse_config(textwrap.dedent(text), environ={"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert FILE_SECRET not in repr(config) + str(config.model_dump())
    assert set(secrets_of(config)) == {FILE_SECRET, ENV["WEBHOOK_SECRET"]}
    try:
        logs.redact(secrets_of(config))
        line = logs.scrub(f"401 for client_secret={FILE_SECRET} with {ENV['WEBHOOK_SECRET']}")
    finally:
        logs.redact([])
    assert line == "401 for client_secret=*** with ***"


# --- webhook secret rotation ---------------------------------------------------------

NEW_SECRET = "whsec_" + "TkVXLXNpZ25pbmcta2V5LTAxMjM0NTY3ODlhYmNkZWY="


def test_webhook_secret_may_be_a_list_and_a_single_one_still_works() -> None:
    text = with_token(
        f"""
        callbacks:
          one: {{type: webhook, url: 'http://x', secret: '{ENV["WEBHOOK_SECRET"]}'}}
          two: {{type: webhook, url: 'http://x', secret: ['{NEW_SECRET}', '${{OLD}}']}}
          none: {{type: webhook, url: 'http://x'}}
        """
    )
    config = parse_config(text, environ={"OLD": ENV["WEBHOOK_SECRET"]})
    one, two, none = (config.callback(name) for name in ("one", "two", "none"))
    assert one.secret == (SecretStr(ENV["WEBHOOK_SECRET"]),)  # type: ignore[attr-defined]
    assert two.secret == (  # type: ignore[attr-defined]
        SecretStr(NEW_SECRET),
        SecretStr(ENV["WEBHOOK_SECRET"]),
    )
    assert none.secret is None  # type: ignore[attr-defined]
    assert set(secrets_of(config)) == {"t", NEW_SECRET, ENV["WEBHOOK_SECRET"]}


@pytest.mark.parametrize(
    ("secret", "expected"),
    [
        ("[]", ["callbacks.hook.secret: list at least one secret"]),
        (f"['{NEW_SECRET}', nope]", ["callbacks.hook.secret[1]: must start with 'whsec_'"]),
        (
            "[whsec_!!, whsec_]",
            [
                "callbacks.hook.secret[0]: the part after 'whsec_' is not valid base64",
                "callbacks.hook.secret[1]: the key after 'whsec_' is empty",
            ],
        ),
        (f"['{NEW_SECRET}', 5]", ["callbacks.hook.secret[1]: expected a string (quote it), got 5"]),
        ("nope", ["callbacks.hook.secret: must start with 'whsec_'"]),
    ],
)
def test_each_listed_secret_is_checked_at_its_index(secret: str, expected: list[str]) -> None:
    text = with_token(f"callbacks:\n  hook: {{type: webhook, url: 'http://x', secret: {secret}}}")
    assert problems(text) == expected


# --- template problems name their key ------------------------------------------------


@pytest.mark.parametrize(
    ("callback", "expected"),
    [
        (
            "{type: webhook, url: 'http://x', format: template, body_template: '{{ name '}",
            "callbacks.slack.body_template: template error: ",
        ),
        (
            "{type: webhook, url: 'http://x', format: template, body_template: 'x={{ name }}'}",
            "callbacks.slack.body_template: template does not render valid JSON",
        ),
        (
            "{type: webhook, url: 'http://x', format: template}",
            "callbacks.slack: format: template needs a body_template",
        ),
        (
            "{type: email, smtp_host: h, from: a@b.c, to: [x@y.z], subject_template: '{% if %}'}",
            "callbacks.slack.subject_template: template error: ",
        ),
        (
            "{type: email, smtp_host: h, from: a@b.c, to: [x@y.z], body_template: '{{ nope }}'}",
            "callbacks.slack.body_template: template error: 'nope' is undefined",
        ),
    ],
)
def test_template_problem_names_the_template_key(callback: str, expected: str) -> None:
    [found] = problems(with_token(f"callbacks:\n  slack: {callback}"))
    assert found.startswith(expected), found


# --- jobs that notify nobody ---------------------------------------------------------


def test_silent_jobs_names_each_job_that_notifies_nobody() -> None:
    no_callbacks = parse_config(with_token("jobs: [{id: a}, {id: b, notify: []}]"), environ={})
    assert silent_jobs(no_callbacks) == [
        "jobs[0] ('a'): notifies nobody: no callback is configured",
        "jobs[1] ('b'): notifies nobody: its notify list is empty",
    ]
    text = with_token(
        """
        callbacks: {h: {type: webhook, url: 'http://x'}}
        jobs: [{id: a}, {id: b, notify: [h]}, {id: c, notify: []}]
        """
    )
    assert silent_jobs(parse_config(text, environ={})) == [
        "jobs[2] ('c'): notifies nobody: its notify list is empty"
    ]
    assert silent_jobs(parse_config(MINIMAL, environ={})) == []
