"""``manage.py taskq_migrate_keys``: move Redis keys of django_taskq 0.1 to the current layout."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq.broker import migrate
from django_taskq.broker.connection import get_broker


class Command(BaseCommand):
    help = (
        "Move the queues, delayed messages, dead letters and results that django_taskq 0.1 "
        "left in Redis to the hash-tagged key layout of 0.2. Stop every worker first; "
        "running it twice is harmless."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be moved; change nothing."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Migrate even though old workers still seem alive (their heartbeats exist).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        client = get_broker()
        alive = migrate.live_old_workers(client)
        if alive and not options["force"]:
            raise CommandError(
                f"{alive} worker(s) of the old layout still have a live heartbeat: stop every "
                "taskq_worker first (heartbeats expire within TASKQ_WORKER_HEARTBEAT_TIMEOUT), "
                "or pass --force"
            )
        report = migrate.migrate(client, dry_run=options["dry_run"])
        head = "Would move" if options["dry_run"] else "Moved"
        self.stdout.write(f"{head}:")
        for line in report.lines():
            self.stdout.write(f"  {line}")
