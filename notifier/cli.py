"""The ``datasaur-notifier`` command line. Thin: parse, call, print, exit.

Exit status: 0 ok, 1 runtime failure, 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from notifier import __version__, channels, logs
from notifier.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    JobSpec,
    load_config,
    unknown_callback,
)
from notifier.durations import parse_duration
from notifier.events import JobStatus, sample_payload
from notifier.report import (
    attempt_document,
    attempts_table,
    deliveries_table,
    delivery_document,
    health_document,
    instance_document,
    instances_table,
    job_document,
    jobs_table,
    paused_lines,
)
from notifier.store import (
    DELIVERY_STATES,
    JOB_STATES,
    CallbackHealth,
    Store,
    StoreError,
    backup_state,
    describe_location,
    import_sqlite_state,
    open_store,
)

OK, FAILURE, USAGE = 0, 1, 2


class UsageError(Exception):
    """A command-line argument that does not fit the config (exit 2)."""


def _print_json(document: Any) -> None:
    print(json.dumps(document, indent=2))


def _open_store(config: Config) -> Store:
    """The configured store, its schema brought up to date first."""
    return open_store(config)


# --- commands -------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    """The daemon, in the foreground."""
    from notifier.daemon import Daemon

    return Daemon(args.config, config, metrics_port=args.metrics_port).run()


def cmd_check_config(args: argparse.Namespace, config: Config) -> int:
    """Reaching here means the config is valid; jobs that notify nobody are warned about."""
    from notifier.config import silent_jobs

    for warning in silent_jobs(config):
        print(f"WARNING: {warning}", file=sys.stderr)
    print(
        f"{args.config}: ok ({len(config.callbacks)} callbacks, {len(config.jobs)} jobs, "
        f"state {describe_location(config)})"
    )
    return OK


def _show(
    args: argparse.Namespace,
    key: str,
    rows: Sequence[Any],
    document: Callable[[Any], dict[str, Any]],
    table_of: Callable[[Sequence[Any]], str],
    health: Sequence[CallbackHealth] = (),
) -> int:
    """Print ``rows`` as JSON or a table, and a line per paused callback in ``health``."""
    paused = [h for h in health if h.paused_at is not None]
    if args.json:
        extra = {"paused_callbacks": [health_document(h) for h in paused]} if health else {}
        _print_json({key: [document(row) for row in rows], **extra})
    else:
        print("\n".join([table_of(rows), *paused_lines(paused)]))
    return OK


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    """The watch list, and the callbacks whose lanes are paused."""
    store = _open_store(config)
    jobs = store.jobs(state=args.state, job_id=args.job)
    return _show(args, "jobs", jobs, job_document, jobs_table, store.callback_health())


def cmd_deliveries(args: argparse.Namespace, config: Config) -> int:
    """The outbox; with ``--id``, one delivery and every attempt made at it."""
    store = _open_store(config)
    deliveries = store.deliveries(state=args.state, job_id=args.job, delivery_id=args.id)
    if args.id is None:
        health = store.callback_health()
        return _show(args, "deliveries", deliveries, delivery_document, deliveries_table, health)
    if not deliveries:
        print(f"no delivery {args.id!r}", file=sys.stderr)
        return FAILURE
    history = store.attempts(args.id)
    if args.json:
        document = delivery_document(deliveries[0])
        document["history"] = [attempt_document(attempt) for attempt in history]
        _print_json({"deliveries": [document]})
    else:
        print(deliveries_table(deliveries) + "\n\n" + attempts_table(history))
    return OK


def cmd_watch(args: argparse.Namespace, config: Config) -> int:
    """Add a job to the persisted watch list."""
    for name in args.notify or []:
        if problem := unknown_callback(name, config.callbacks):
            raise UsageError(f"--notify: {problem}")
    fields: dict[str, Any] = {"id": args.job_id, "name": args.name, "notify": args.notify}
    if args.on_status:
        fields["on_status"] = args.on_status
    try:
        spec = JobSpec.model_validate(fields)
    except ValueError as exc:
        raise UsageError(str(exc).splitlines()[-1].strip()) from None
    job = _open_store(config).watch(spec, time.time())
    print(f"watching {job.id} (state {job.state})" + (f" as {job.name!r}" if job.name else ""))
    return OK


def cmd_unwatch(args: argparse.Namespace, config: Config) -> int:
    """Stop polling a job."""
    job = _open_store(config).unwatch(args.job_id)
    if job is None:
        print(f"no watched job {args.job_id!r}", file=sys.stderr)
        return FAILURE
    print(f"{job.id}: {job.state}")
    return OK


BULK_REDELIVER_LIMIT = 100  # more than this many need --yes


def cmd_redeliver(args: argparse.Namespace, config: Config) -> int:
    """Queue a delivery again under the same webhook-id; with filters, every match."""
    filters = {
        "--state": args.state,
        "--callback": args.callback,
        "--job": args.job,
        "--since": args.since,
        "--until": args.until,
    }
    given = [name for name, value in filters.items() if value is not None]
    bulk_options = [name for name in ("dry_run", "yes", "json") if getattr(args, name)]
    if args.delivery_id is None:
        return _redeliver_matching(args, config, given)
    if given or bulk_options:
        options = given + ["--" + name.replace("_", "-") for name in bulk_options]
        raise UsageError(
            f"give a DELIVERY_ID or filters, not both ({', '.join(options)} go with filters)"
        )
    delivery = _open_store(config).redeliver(args.delivery_id, time.time())
    if delivery is None:
        print(f"no delivery {args.delivery_id!r}", file=sys.stderr)
        return FAILURE
    print(
        f"{delivery.id}: queued again ({delivery.event} for {delivery.job_id} "
        f"to {delivery.callback})"
    )
    return OK


def _redeliver_matching(args: argparse.Namespace, config: Config, given: list[str]) -> int:
    """``redeliver --state S [--callback N] [--job ID] [--since D] [--until D]``."""
    if not given:
        raise UsageError(
            "give a DELIVERY_ID, or --state STATE and optionally --callback, --job, --since,"
            " --until"
        )
    if args.state is None:
        raise UsageError(f"{', '.join(given)}: also give --state (e.g. --state dead)")
    if args.since is not None and args.until is not None and args.since <= args.until:
        raise UsageError("--since must reach further back than --until")
    now = time.time()
    result = _open_store(config).redeliver_matching(
        args.state,
        now,
        callback=args.callback,
        job_id=args.job,
        created_after=None if args.since is None else now - args.since,
        created_before=None if args.until is None else now - args.until,
        dry_run=args.dry_run,
        at_most=None if args.yes else BULK_REDELIVER_LIMIT,
    )
    found = result.deliveries
    if not args.dry_run and not result.queued:
        raise UsageError(
            f"{len(found)} deliveries match, more than {BULK_REDELIVER_LIMIT}: nothing queued;"
            " add --yes to queue them all again (or --dry-run to list them)"
        )
    if args.json:
        _print_json({"deliveries": [delivery_document(d) for d in found], "queued": result.queued})
    elif args.dry_run:
        print(deliveries_table(found))
        print(f"\n{len(found)} deliveries match; nothing queued (dry run)")
    else:
        print(f"queued {len(found)} deliveries again" if found else "no delivery matches")
    return OK


def _duration(text: str) -> float:
    """An argparse type: ``6h``, ``30m``, ``2d`` or seconds."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_test_callback(args: argparse.Namespace, config: Config) -> int:
    """Send a ``test`` event through one callback, now."""
    if problem := unknown_callback(args.name, config.callbacks):
        raise UsageError(problem)
    channel = channels.create(args.name, config.callback(args.name), config.delivery.timeout)
    started = time.monotonic()
    outcome = channel.deliver("msg_test_" + uuid.uuid4().hex, sample_payload(time.time()))
    took = (time.monotonic() - started) * 1000
    verdict = "ok" if outcome.ok else "failed"
    stream = sys.stdout if outcome.ok else sys.stderr
    print(f"{args.name}: {verdict}: {outcome.detail} ({took:.0f}ms)", file=stream)
    return OK if outcome.ok else FAILURE


def cmd_get_job(args: argparse.Namespace, config: Config) -> int:
    """Ask Datasaur about one job."""
    from notifier.datasaur import ApiUnavailable, DatasaurClient, QueryRejected

    try:
        job = DatasaurClient(config.datasaur).get_job(args.job_id)
    except (ApiUnavailable, QueryRejected) as exc:
        print(f"cannot get job {args.job_id}: {exc}", file=sys.stderr)
        return FAILURE
    if job is None:
        print(f"job {args.job_id} not found", file=sys.stderr)
        return FAILURE
    _print_json(job)
    return OK


def cmd_instances(args: argparse.Namespace, config: Config) -> int:
    """The daemons that share this state, from their heartbeats."""
    instances = _open_store(config).instances(time.time())
    return _show(args, "instances", instances, instance_document, instances_table)


def cmd_migrate(args: argparse.Namespace, config: Config) -> int:
    """Create or upgrade the schema (opening the store does it) and say so."""
    store = _open_store(config)
    store.close()
    print(f"state {describe_location(config)}: schema up to date")
    return OK


def cmd_import_state(args: argparse.Namespace, config: Config) -> int:
    """Copy a SQLite state file into the configured PostgreSQL store."""
    if config.state_url is None:
        raise UsageError("the config has no state_url: import-state copies into PostgreSQL")
    if not args.sqlite_path.is_file():
        raise UsageError(f"no SQLite state file at {args.sqlite_path}")
    counts = import_sqlite_state(config, args.sqlite_path)
    print(
        f"imported {counts.jobs} jobs, {counts.deliveries} deliveries and {counts.attempts}"
        f" attempts from {args.sqlite_path} (already present: {counts.skipped_jobs} jobs,"
        f" {counts.skipped_deliveries} deliveries)"
    )
    return OK


def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    """A consistent copy of the SQLite state, taken while the daemon runs."""
    if config.state_url is not None:
        raise UsageError("the state is in PostgreSQL: back it up with pg_dump")
    if args.path.resolve() == config.state_path.resolve():
        raise UsageError("the backup must not be the state file itself")
    backup_state(config, args.path)
    print(f"backed up {config.state_path} to {args.path}")
    return OK


def cmd_demo(args: argparse.Namespace) -> int:
    """The real daemon against an embedded simulator and receiver."""
    from notifier.demo import run_demo

    return run_demo(keep=args.keep)


def cmd_simulate(args: argparse.Namespace) -> int:
    """Serve the Datasaur simulator in the foreground."""
    from notifier.standins.simulator import serve

    serve(args.host, args.port, auto_finish_after=args.finish_after)
    return OK


# --- parsing --------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c",
        "--config",
        type=Path,
        default=argparse.SUPPRESS,
        help=f"config file (default {DEFAULT_CONFIG_PATH})",
    )
    common.add_argument(
        "--log-format",
        choices=("text", "json"),
        default=argparse.SUPPRESS,
        help="log line format on stderr (default text)",
    )
    parser = argparse.ArgumentParser(
        prog="datasaur-notifier",
        description="Watch Datasaur jobs and notify webhooks and email when they end.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[..., int], text: str, config: bool = True) -> Any:
        sub = commands.add_parser(name, parents=[common], help=text, description=text)
        sub.set_defaults(func=func, needs_config=config)
        return sub

    run = add("run", cmd_run, "Run the daemon in the foreground (SIGHUP reloads the config).")
    run.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus /metrics and /healthz"
    )
    add("check-config", cmd_check_config, "Validate the config file; exit 2 on any problem.")
    for name, func, states, text in (
        ("status", cmd_status, JOB_STATES, "Show the watched jobs."),
        ("deliveries", cmd_deliveries, DELIVERY_STATES, "Show the notification outbox."),
    ):
        sub = add(name, func, text)
        sub.add_argument("--json", action="store_true", help="print JSON")
        sub.add_argument("--state", choices=states, help="only rows in this state")
        sub.add_argument("--job", metavar="JOB_ID", help="only this job")
        if name == "deliveries":
            sub.add_argument(
                "--id", metavar="DELIVERY_ID", help="only this delivery, with its attempts"
            )
    watch = add("watch", cmd_watch, "Add a job to the persisted watch list.")
    watch.add_argument("job_id", metavar="JOB_ID")
    watch.add_argument("--name", help="shown in notifications")
    watch.add_argument("--notify", nargs="+", metavar="CALLBACK", help="default: every callback")
    watch.add_argument(
        "--on-status",
        nargs="+",
        metavar="STATUS",
        choices=[s.value for s in JobStatus],
        help="statuses that notify (default: DELIVERED FAILED)",
    )
    add("unwatch", cmd_unwatch, "Stop watching a job.").add_argument("job_id", metavar="JOB_ID")
    redeliver = add(
        "redeliver",
        cmd_redeliver,
        "Queue a delivered or dead delivery again (same webhook-id); with filters instead of"
        f" an id, every matching one (more than {BULK_REDELIVER_LIMIT} need --yes).",
    )
    redeliver.add_argument("delivery_id", nargs="?", metavar="DELIVERY_ID")
    redeliver.add_argument("--state", choices=DELIVERY_STATES, help="deliveries in this state")
    redeliver.add_argument("--callback", metavar="NAME", help="only this callback's")
    redeliver.add_argument("--job", metavar="JOB_ID", help="only this job's")
    redeliver.add_argument(
        "--since", type=_duration, metavar="DURATION", help="created at most this long ago (6h)"
    )
    redeliver.add_argument(
        "--until", type=_duration, metavar="DURATION", help="created at least this long ago (2h)"
    )
    redeliver.add_argument(
        "--dry-run", action="store_true", help="list the matching deliveries, change nothing"
    )
    redeliver.add_argument(
        "--yes", action="store_true", help=f"go ahead when more than {BULK_REDELIVER_LIMIT} match"
    )
    redeliver.add_argument("--json", action="store_true", help="print the deliveries as JSON")
    add(
        "test-callback", cmd_test_callback, "Send a test event through a callback now."
    ).add_argument("name", metavar="NAME")
    add("get-job", cmd_get_job, "Query Datasaur once for a job and print it as JSON.").add_argument(
        "job_id", metavar="JOB_ID"
    )
    instances = add("instances", cmd_instances, "Show the daemons sharing the state.")
    instances.add_argument("--json", action="store_true", help="print JSON")
    add("migrate", cmd_migrate, "Create or upgrade the state's schema, then exit.")
    add(
        "import-state",
        cmd_import_state,
        "Copy a SQLite state file into the PostgreSQL store (state_url); safe to repeat.",
    ).add_argument("sqlite_path", type=Path, metavar="SQLITE_PATH")
    add(
        "backup", cmd_backup, "Write a consistent copy of the SQLite state (daemon running or not)."
    ).add_argument("path", type=Path, metavar="PATH")
    add(
        "demo", cmd_demo, "Run the daemon against a local simulator and receiver.", config=False
    ).add_argument(
        "--keep",
        action="store_true",
        help="after the last notification, stay up (status page and all) until Ctrl-C",
    )
    simulate = add(
        "simulate", cmd_simulate, "Serve the Datasaur simulator (token + GraphQL).", config=False
    )
    simulate.add_argument("--port", type=int, default=0, help="default: a free port")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument(
        "--finish-after",
        type=float,
        default=20.0,
        metavar="SECONDS",
        help="unknown job ids become jobs that finish after this long",
    )
    add("completion", cmd_completion, "Print a bash completion script.", config=False)
    return parser


BASH_COMPLETION = """\
# bash completion for datasaur-notifier; load with:
#   source <(datasaur-notifier completion)
_datasaur_notifier() {
    local word=${COMP_WORDS[COMP_CWORD]} command="" i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -c | --config | --log-format) ((i++)) ;;
            -*) ;;
            *) command=${COMP_WORDS[i]}; break ;;
        esac
    done
    case $command in
%s
        *) COMPREPLY=($(compgen -W "%s" -- "$word")) ;;
    esac
}
complete -o default -F _datasaur_notifier datasaur-notifier
"""


def completion_script(parser: argparse.ArgumentParser) -> str:
    """A bash completion script for every command and option of ``parser``."""
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    cases = []
    for name, sub in commands.choices.items():
        options = " ".join(o for action in sub._actions for o in action.option_strings)
        cases.append(f'        {name}) COMPREPLY=($(compgen -W "{options}" -- "$word")) ;;')
    top = " ".join(
        [*commands.choices, *(o for action in parser._actions for o in action.option_strings)]
    )
    return BASH_COMPLETION % ("\n".join(cases), top)


def cmd_completion(args: argparse.Namespace) -> int:
    """Print the bash completion script."""
    print(completion_script(_parser()), end="")
    return OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script and of ``python -m notifier``."""
    args = _parser().parse_args(argv)
    args.config = getattr(args, "config", DEFAULT_CONFIG_PATH)
    logs.setup(getattr(args, "log_format", "text"))
    if not args.needs_config:
        return int(args.func(args))
    try:
        config = load_config(args.config)
        return int(args.func(args, config))
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        return USAGE
    except UsageError as exc:
        print(f"datasaur-notifier {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except StoreError as exc:
        print(f"datasaur-notifier {args.command}: {exc}", file=sys.stderr)
        return FAILURE
    except KeyboardInterrupt:
        return FAILURE
