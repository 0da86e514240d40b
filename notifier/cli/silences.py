"""``silence add|list|expire``: hold a callback's deliveries for a while, list, end early.

``add`` takes the API's words (``--callback`` or ``--match``, ``--for`` or ``--until``,
``--comment``); its author is ``cli``. The daemon, running or not, takes a silence up on
its next delivery tick: it is written to the state directly.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from notifier.cli.base import OK, Command, UsageError, print_json
from notifier.cli.parsing import Parser
from notifier.cli.state import open_state
from notifier.config import StateView, key_path
from notifier.durations import relative_time
from notifier.report import table
from notifier.silences import Silence, SilenceRequest, new_silence, silence_document

FLAGS = {"callback": "--callback", "match": "--match", "for": "--for", "until": "--until"}


def _request(args: argparse.Namespace) -> dict[str, Any]:
    """The command line as the API's body."""
    body: dict[str, Any] = {"comment": args.comment or ""}
    if args.callback is not None:
        body["callback"] = args.callback
    if args.match is not None:
        pairs = [item.partition("=") for item in args.match]
        bad = [key for key, equals, _ in pairs if not equals or not key]
        if bad:
            raise UsageError(f"--match: expected key=value, got {bad[0]!r}")
        body["match"] = {key: value for key, _, value in pairs}
    if args.duration is not None:
        body["for"] = args.duration
    if args.until is not None:
        body["until"] = args.until
    return body


def _flag(path: str) -> str:
    head, dot, rest = path.partition(".")
    return FLAGS.get(head, f"--{head}") + (f" {rest}" if dot else "")


def cmd_add(args: argparse.Namespace, config: StateView) -> int:
    """Add a silence; print its id."""
    now = time.time()
    try:
        request = SilenceRequest.model_validate(_request(args))
    except ValidationError as exc:
        lines = [f"{_flag(key_path(e['loc']))}: {e['msg']}" for e in exc.errors()]
        raise UsageError("\n".join(lines).replace("Value error, ", "")) from None
    silence, problems = new_silence(request, now, "cli", config.callbacks)
    if silence is None:
        raise UsageError("\n".join(f"{_flag(path)}: {message}" for path, message in problems))
    open_state(config).add_silence(silence)
    print(f"silence {silence.id}: {_describe(silence, now)}")
    return OK


def _matcher(silence: Silence) -> str:
    if silence.callback is not None:
        return f"callback {silence.callback}"
    return "match " + ",".join(f"{k}={v}" for k, v in (silence.match or {}).items())


def _describe(silence: Silence, now: float) -> str:
    span = "ends" if silence.active(now) else "ended"
    return f"{_matcher(silence)}, {span} {relative_time(silence.ends_at, now)}"


def silences_table(silences: Sequence[Silence], now: float) -> str:
    """``silence list``: one line per silence, active ones first."""
    ordered = sorted(silences, key=lambda s: (not s.active(now), -s.ends_at))
    rows = [
        [s.id, "active" if s.active(now) else "ended", _matcher(s),
         relative_time(s.ends_at, now), s.author, s.comment]
        for s in ordered
    ]  # fmt: skip
    headers = ["ID", "STATE", "MATCHES", "ENDS", "AUTHOR", "COMMENT"]
    return table(headers, rows) if rows else "no silences"


def cmd_list(args: argparse.Namespace, config: StateView) -> int:
    """The silences: active, and those ended within the last 7 days."""
    silences = open_state(config, create=False).silences()
    if args.json:
        print_json({"silences": [silence_document(s) for s in silences]})
    else:
        print(silences_table(silences, time.time()))
    return OK


def cmd_expire(args: argparse.Namespace, config: StateView) -> int:
    """End a silence now; its held deliveries go out on the daemon's next tick."""
    now = time.time()
    store = open_state(config, create=False)
    known = {s.id: s for s in store.silences()}
    if args.silence_id not in known:
        raise UsageError(f"no silence {args.silence_id!r} (see `silence list`)")
    if not known[args.silence_id].active(now):
        print(f"silence {args.silence_id}: already ended; nothing changed")
        return OK
    silence = store.expire_silence(args.silence_id, now)
    assert silence is not None
    print(f"silence {silence.id}: expired ({_matcher(silence)})")
    return OK


def cmd_silence(args: argparse.Namespace, config: StateView) -> int:
    """Dispatch to ``add``, ``list`` or ``expire``."""
    return int(args.silence_run(args, config))


def _arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=Parser
    )
    add = actions.add_parser("add", help="hold deliveries for a while")
    matcher = add.add_mutually_exclusive_group(required=True)
    matcher.add_argument("--callback", metavar="NAME", help="every delivery of this callback")
    matcher.add_argument(
        "--match", nargs="+", action="extend", metavar="KEY=VALUE", help="jobs with these labels"
    )
    span = add.add_mutually_exclusive_group(required=True)
    span.add_argument("--for", dest="duration", metavar="DURATION", help="how long (e.g. 2h)")
    span.add_argument("--until", metavar="TIME", help="until when (ISO-8601; no offset: UTC)")
    add.add_argument("--comment", metavar="TEXT", help="why (shown with the silence)")
    add.set_defaults(silence_run=cmd_add)
    listing = actions.add_parser("list", help="active silences and recently ended ones")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(silence_run=cmd_list)
    expire = actions.add_parser("expire", help="end a silence now")
    expire.add_argument("silence_id", metavar="ID")
    expire.set_defaults(silence_run=cmd_expire)


COMMANDS = [
    Command(
        "silence",
        cmd_silence,
        "Hold deliveries for a while: silence add | list | expire.",
        _arguments,
        "state",
    )
]
