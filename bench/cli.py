"""The benchmark: the daemon (a subprocess) against a naive poller, on this machine.

``python -m bench`` (full, 3 runs), ``--quick`` (1 short run), ``--runs N``,
``--only SCENARIO ...``, ``--out PATH`` (default ``bench/results.json``).

The scenarios are the modules of :mod:`bench.scenarios` (one each, see there for adding
one), what they share is :mod:`bench.harness`, and the medians and the table are
:mod:`bench.report`. ``python -m bench _naive URL COUNT SECONDS`` is the naive poller's
own process, started by the ``naive`` scenario.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.harness import FULL, QUICK, Sizes
from bench.report import machine, medians, table
from bench.scenarios.naive import naive_worker

DEFAULT_OUT = Path(__file__).with_name("results.json")


def one_run(root: Path, sizes: Sizes, only: set[str], log: Callable[[str], None]) -> dict[str, Any]:
    """Every scenario in ``only``, in order, then the figures derived from several."""
    run: dict[str, Any] = {}

    def step(name: str, func: Callable[[], dict[str, Any]]) -> None:
        started = time.monotonic()
        run[name] = func()
        log(f"  {name}: {time.monotonic() - started:.1f}s {_brief(run[name])}")

    for item in scenarios.load():
        if item.name in only:
            item.run(root, sizes, step)
    for derive in scenarios.derivations():
        derive(run)
    return run


def _brief(result: dict[str, Any]) -> str:
    keys = (
        "polls_per_s", "cpu_ms_per_1000_polls", "cpu_percent", "rss_mib", "running_s",
        "p50_s", "p99_s", "webhooks_per_s",
    )  # fmt: skip
    return " ".join(f"{k}={result[k]:.3g}" for k in keys if isinstance(result.get(k), float))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_naive"]:  # the naive poller's own process (bench.scenarios.naive)
        naive_worker(argv[1], int(argv[2]), float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one short run (about 2 minutes)")
    parser.add_argument("--runs", type=int, help="runs to take medians over (default 3; quick 1)")
    parser.add_argument(
        "--only", nargs="+", choices=scenarios.names(), help="run only these scenarios"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON results file")
    parser.add_argument("--workdir", type=Path, help="where state files go (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    runs = args.runs or (1 if args.quick else 3)
    only = set(args.only or scenarios.names())
    root = Path(tempfile.mkdtemp(prefix="notifier-bench-", dir=args.workdir))
    command = "python -m bench " + " ".join(argv)
    started = time.monotonic()
    log = _print_now
    log(f"{command.strip()}: {runs} run(s), state files in {root}")
    results: list[dict[str, Any]] = []
    try:
        for index in range(runs):
            log(f"run {index + 1}/{runs}")
            results.append(one_run(root, sizes, only, log))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    median = medians(results)
    text, rows = table(median, scenarios.rows())
    elapsed = time.monotonic() - started
    print()
    print(text)
    print(f"\nmedians of {runs} run(s); {elapsed:.0f}s in all")
    document = {
        "command": command.strip(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "quick": args.quick,
        "sizes": sizes.__dict__,
        "elapsed_s": elapsed,
        "table": rows,
        "median": median,
        "runs": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _print_now(line: str) -> None:
    print(line, flush=True)
