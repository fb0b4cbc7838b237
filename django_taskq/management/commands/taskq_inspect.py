"""``manage.py taskq_inspect``: queues, workers and dead letters at a glance."""

from __future__ import annotations

import datetime as dt
import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from django_taskq.control import dead_letters, inspect
from django_taskq.management.errors import reports_broker_errors


class Command(BaseCommand):
    help = "Show queues (waiting, running, delayed), live workers and dead letters."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print JSON instead of a table.")
        parser.add_argument(
            "--dead",
            type=int,
            default=0,
            metavar="N",
            help="Also list the N newest dead letters with their reason.",
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        data = inspect()
        if options["dead"]:
            data["dead"] = dead_letters(options["dead"])
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
                f"queues {','.join(w['queues'])} since {since} UTC"
            )
        for row in data.get("dead", []):
            self.stdout.write(
                f"  dead {row['entry_id']} task {row.get('i', '?')}: {row.get('reason', '')}"
            )
