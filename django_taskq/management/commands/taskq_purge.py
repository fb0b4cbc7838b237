"""``manage.py taskq_purge``: delete waiting messages."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq.control import known_queues, purge
from django_taskq.management.errors import reports_broker_errors


class Command(BaseCommand):
    help = "Delete every waiting (not yet started) message of some or all queues."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-Q", "--queues", default=None, help="Comma-separated queues (default: all)."
        )
        parser.add_argument(
            "-f", "--force", action="store_true", help="Do not ask for confirmation."
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        queues = [
            q.strip() for q in (options["queues"] or "").split(",") if q.strip()
        ] or known_queues()
        if not queues:
            self.stdout.write("No queues to purge.")
            return
        if not options["force"]:
            try:
                answer = input(f"Delete all waiting messages of {', '.join(queues)}? [y/N] ")
            except EOFError:
                raise CommandError("no terminal to confirm on: use --force") from None
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("purge cancelled")
        removed = purge(queues)
        self.stdout.write(f"Purged {removed} message(s) from {', '.join(queues)}.")
