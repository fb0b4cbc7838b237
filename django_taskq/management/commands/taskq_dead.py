"""``manage.py taskq_dead``: list or requeue dead-lettered messages."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from django_taskq.control import dead_letters, requeue_dead
from django_taskq.management.errors import reports_broker_errors


class Command(BaseCommand):
    help = "List dead letters with their reason, or put them back on their queues."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--count", type=int, default=20, help="How many to list (newest first)."
        )
        parser.add_argument(
            "--requeue",
            nargs="*",
            metavar="ENTRY_ID",
            help="Requeue these dead letters (all when no id is given).",
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        if options["requeue"] is not None:
            moved = requeue_dead(options["requeue"] or None)
            self.stdout.write(f"Requeued {moved} dead letter(s).")
            return
        rows = dead_letters(options["count"])
        if not rows:
            self.stdout.write("No dead letters.")
        for row in rows:
            self.stdout.write(
                f"{row['entry_id']}  task id {row.get('i') or '?'}  on {row.get('stream', '?')}"
            )
            self.stdout.write(f"    reason: {row.get('reason', '')}")
