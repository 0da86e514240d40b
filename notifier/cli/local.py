"""Commands that need no config: ``demo``, ``simulate``, ``gen-secret``, ``gen-token``."""

from __future__ import annotations

import argparse
import base64
import secrets

from notifier.cli.base import OK, Command


def cmd_demo(args: argparse.Namespace) -> int:
    """The real daemon against an embedded simulator and receiver."""
    from notifier.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Serve the Datasaur simulator in the foreground."""
    from notifier.standins.simulate import serve

    serve(
        args.host, args.port, auto_finish_after=args.finish_after, legacy_schema=args.legacy_schema
    )
    return OK


SIGNING_KEY_BYTES = 32  # Standard Webhooks: 24 to 64 bytes
API_TOKEN_BYTES = 32  # 43 characters of URL-safe base64


def cmd_gen_secret(args: argparse.Namespace) -> int:
    """Print a fresh webhook signing secret (``whsec_`` + base64 of 32 random bytes)."""
    print("whsec_" + base64.b64encode(secrets.token_bytes(SIGNING_KEY_BYTES)).decode())
    return OK


def cmd_gen_token(args: argparse.Namespace) -> int:
    """Print a fresh API token (43 URL-safe characters, 256 random bits)."""
    print(secrets.token_urlsafe(API_TOKEN_BYTES))
    return OK


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the last notification, stay up (status page and all) until Ctrl-C",
    )


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--finish-after",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="unknown job ids become jobs that finish after this long",
    )
    parser.add_argument(
        "--legacy-schema",
        action="store_true",
        help="serve the schema of servers older than 2022-08 (Job: id status progress errors"
        " resultId result)",
    )


COMMANDS = [
    Command(
        "demo",
        cmd_demo,
        "Run the daemon against a local simulator and receiver.",
        _demo_arguments,
        needs="nothing",
    ),
    Command(
        "simulate",
        cmd_simulate,
        "Serve the Datasaur simulator (token + GraphQL).",
        _simulate_arguments,
        needs="nothing",
    ),
    Command(
        "gen-secret",
        cmd_gen_secret,
        "Print a fresh webhook signing secret (whsec_...) for a callback's secret.",
        needs="nothing",
    ),
    Command(
        "gen-token",
        cmd_gen_token,
        "Print a fresh 43-character token for api.tokens.",
        needs="nothing",
    ),
]
