"""Commands that use the whole config: ``run``, ``check-config``, ``test-callback``,
``get-job``, ``healthcheck``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import uuid

from notifier import channels
from notifier.cli.base import FAILURE, OK, USAGE, Command, UsageError, print_json
from notifier.config import Config, unknown_callback
from notifier.durations import parse_duration
from notifier.events import sample_payload
from notifier.store import describe_location


def cmd_run(args: argparse.Namespace, config: Config) -> int:
    """The daemon, in the foreground."""
    from notifier.daemon import Daemon

    daemon = Daemon(args.config, config, metrics_port=args.metrics_port)
    status = daemon.run()
    if daemon.abandoned:  # the threads still sending would hold the exit up: not waited for
        logging.shutdown()
        sys.stdout.flush()
        os._exit(status)
    return status


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
    print(f"callback {args.name}: {verdict}: {outcome.detail} ({took:.0f}ms)", file=stream)
    return OK if outcome.ok else FAILURE


def cmd_get_job(args: argparse.Namespace, config: Config) -> int:
    """Ask Datasaur about one job."""
    from notifier.datasaur import ApiUnavailable, DatasaurClient, QueryRejected

    client = DatasaurClient(config.datasaur)
    try:
        job = client.get_job(args.job_id)
    except (ApiUnavailable, QueryRejected) as exc:
        print(f"cannot get job {args.job_id}: {exc}", file=sys.stderr)
        return FAILURE
    if job is None:
        print(f"job {args.job_id} not found", file=sys.stderr)
        return FAILURE
    client.attach_results([job])
    print_json(job)
    return OK


def cmd_healthcheck(args: argparse.Namespace) -> int:
    """Ask the running daemon's ``/healthz`` (the container image's HEALTHCHECK): at the
    address of ``-c``'s config, else of the config and ``--metrics-port`` PID 1 runs with."""
    from notifier.config import load_config
    from notifier.healthcheck import healthz_url, pid1_daemon, probe

    found = None if args.config_given else pid1_daemon()
    config = load_config(args.config if found is None else found[0])
    metrics = config.metrics
    if found is not None and found[1] is not None:
        metrics = metrics.model_copy(update={"port": found[1]})
    url = healthz_url(metrics)
    if url is None:
        print(
            "healthcheck: metrics.port is not set, so the daemon serves no /healthz",
            file=sys.stderr,
        )
        return USAGE
    healthy, detail = probe(url, args.timeout)
    print(f"{url}: {detail}", file=sys.stdout if healthy else sys.stderr)
    return OK if healthy else FAILURE


def _run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port", type=int, metavar="PORT", help="serve Prometheus /metrics and /healthz"
    )


def _callback_name(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME")


def _job_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job_id", metavar="JOB_ID")


def _timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout", type=parse_duration, default=5.0, help="how long to wait (default 5s)"
    )


COMMANDS = [
    Command(
        "run",
        cmd_run,
        "Run the daemon in the foreground (SIGHUP reloads the config).",
        _run_arguments,
    ),
    Command("check-config", cmd_check_config, "Validate the config file; exit 2 on any problem."),
    Command(
        "test-callback",
        cmd_test_callback,
        "Send a test event through a callback now.",
        _callback_name,
    ),
    Command("get-job", cmd_get_job, "Query Datasaur once for a job and print it as JSON.", _job_id),
    Command(
        "healthcheck",
        cmd_healthcheck,
        "Exit 0 if the running daemon's /healthz is ok.",
        _timeout,
        needs="nothing",
    ),
]
