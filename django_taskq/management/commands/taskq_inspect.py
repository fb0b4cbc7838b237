"""``manage.py taskq_inspect``: queues and workers at a glance, or ask the workers.

Without a subcommand it prints the overview read from Redis (queues,
delayed, dead letters, online workers). With one it asks the workers and
prints each one's reply: ``active``, ``reserved``, ``scheduled``,
``registered``, ``stats``, ``ping``, ``query_task ID...``.
"""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand

from django_taskq import control
from django_taskq.management import numbers
from django_taskq.management.errors import reports_broker_errors
from django_taskq.management.replies import (
    Render,
    add_remote_options,
    remote_kwargs,
    render_mapping,
    report,
    when,
)

SUBCOMMANDS: dict[str, str] = {
    "active": "Tasks running now, with their runtime.",
    "reserved": "Messages fetched by a worker and not started yet.",
    "scheduled": "Delayed messages (ETA, countdown, retry) of each worker's queues.",
    "registered": "Task names each worker has registered, with their limits.",
    "stats": "Each worker's numbers: pool, concurrency, uptime, counts, load, memory.",
    "ping": "Which workers answer.",
    "query_task": "Where given task ids are on the workers (active or reserved).",
}


class Command(BaseCommand):
    help = (
        "Show queues (waiting, running, delayed), live workers and dead letters; or ask the "
        "workers (subcommands active, reserved, scheduled, registered, stats, ping, query_task)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of text.")
        parser.add_argument(
            "--dead",
            type=numbers.non_negative,
            default=0,
            metavar="N",
            help="Overview only: also list the N newest dead letters with their reason.",
        )
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        for name, text in SUBCOMMANDS.items():
            subparser = sub.add_parser(name, help=text, description=text)
            add_remote_options(subparser)
            if name == "query_task":
                subparser.add_argument("task_ids", nargs="+", metavar="ID", help="Task ids.")
            if name == "scheduled":
                subparser.add_argument(
                    "--limit",
                    type=numbers.positive,
                    default=100,
                    help="Most messages per queue (100).",
                )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        name = options.get("subcommand")
        if not name:
            self._overview(options)
            return
        kwargs = remote_kwargs(options)
        calls: dict[str, tuple[Callable[[], control.Replies], Render]] = {
            "active": (lambda: control.active(**kwargs), _tasks),
            "reserved": (lambda: control.reserved(**kwargs), _tasks),
            "scheduled": (lambda: control.scheduled(options["limit"], **kwargs), _scheduled),
            "registered": (lambda: control.registered(**kwargs), _registered),
            "stats": (lambda: control.stats(**kwargs), render_mapping),
            "ping": (lambda: control.ping(**kwargs), lambda result: [str(result)]),
            "query_task": (lambda: control.query_task(options["task_ids"], **kwargs), _query),
        }
        call, render = calls[name]
        report(self, call, render, options["json"])

    def _overview(self, options: dict[str, Any]) -> None:
        data = control.inspect()
        if options["dead"]:
            data["dead"] = control.dead_letters(options["dead"])
        if options["json"]:
            self.stdout.write(json.dumps(data, indent=2, default=str))
            return
        self.stdout.write("Queues:")
        if not data["queues"]:
            self.stdout.write("  (none yet)")
        for name, q in data["queues"].items():
            self.stdout.write(f"  {name:<24} waiting {q['waiting']:>8}   running {q['running']:>6}")
        self.stdout.write(f"Delayed (ETA/countdown/retry): {data['delayed']}")
        self.stdout.write(f"Dead letters: {data['dead_letters']}")
        self.stdout.write("Workers:")
        if not data["workers"]:
            self.stdout.write("  (none registered)")
        for w in data["workers"]:
            since = dt.datetime.fromtimestamp(w["started"], tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            self.stdout.write(
                f"  {w['hostname']} pid {w['pid']} pool {w['pool']} x{w['concurrency']} "
                f"queues {','.join(w['queues'])} since {since} UTC, running {len(w['running'])}"
            )
        for row in data.get("dead", []):
            self.stdout.write(
                f"  dead {row['entry_id']} task {row.get('i', '?')}: {row.get('reason', '')}"
            )


def _tasks(result: Any) -> list[str]:
    rows = result if isinstance(result, list) else []
    if not rows:
        return ["(none)"]
    lines = []
    for row in rows:
        where = f"on {row.get('queue', '?')}"
        if "runtime" in row:
            where += f", running {float(row['runtime']):.1f}s since {when(row.get('started'))}"
        lines.append(
            f"{row.get('task', '?')}[{row.get('task_id', '?')}] {where} "
            f"args={row.get('args', '')} kwargs={row.get('kwargs', '')}"
        )
    return lines


def _scheduled(result: Any) -> list[str]:
    lines = []
    for queue, rows in (result or {}).items():
        lines.append(f"{queue}:" + ("" if rows else " (none)"))
        for row in rows:
            lines.append(
                f"  eta {when(row.get('eta'))} {row.get('task', '?')}[{row.get('task_id', '?')}] "
                f"priority {row.get('priority', '?')} args={row.get('args', '')}"
            )
    return lines or ["(none)"]


def _registered(result: Any) -> list[str]:
    lines = []
    for row in result or []:
        limits = [
            f"{key}={row[key]}"
            for key in ("rate_limit", "soft_time_limit", "time_limit")
            if row.get(key) is not None
        ]
        lines.append(row.get("name", "?") + (f" [{', '.join(limits)}]" if limits else ""))
    return lines or ["(none)"]


def _query(result: Any) -> list[str]:
    if not result:
        return ["(none of these ids here)"]
    return [
        f"{task_id}: {row.get('state')} {row.get('task', '?')} on {row.get('queue', '?')}"
        for task_id, row in result.items()
    ]
