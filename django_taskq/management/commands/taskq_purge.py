"""``manage.py taskq_purge``: delete waiting messages (``celery purge``)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq.broker.connection import get_broker
from django_taskq.control import known_queues, purge_counts, queue_stats, unknown_queues
from django_taskq.management.errors import reports_broker_errors


class Command(BaseCommand):
    help = (
        "Delete every waiting (not yet started) and delayed message of some or all queues. "
        "Messages a worker has fetched are left to run; dead letters stay (see taskq_dead)."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "-Q", "--queues", default=None, help="Comma-separated queues (default: all)."
        )
        parser.add_argument(
            "-f", "--force", action="store_true", help="Do not ask for confirmation."
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        named = [q.strip() for q in (options["queues"] or "").split(",") if q.strip()]
        queues = named or known_queues()
        if named:
            try:
                unknown = unknown_queues(named)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            for queue in unknown:
                self.stderr.write(
                    f"Warning: there is no queue {queue!r} (no message was sent to it and no "
                    "worker consumes it, or it was forgotten after TASKQ_QUEUE_FORGET_AFTER)."
                )
            queues = [q for q in named if q not in unknown]
            if not queues:
                known = ", ".join(known_queues()) or "none"
                raise CommandError(f"nothing to purge: no such queue (known queues: {known})")
        if not queues:
            self.stdout.write("No queues to purge.")
            return
        if not options["force"]:
            try:
                answer = input(f"Delete all waiting messages of {', '.join(queues)}? [y/N] ")
            except (EOFError, OSError):  # no stdin, or one that cannot be read
                raise CommandError("no terminal to confirm on: use --force") from None
            if answer.strip().lower() not in {"y", "yes"}:
                raise CommandError("purge cancelled")
        removed = purge_counts(queues)
        client = get_broker()
        for queue, count in removed.items():
            running = queue_stats(client, queue)["running"]
            kept = f"; {running} fetched by workers left to run" if running else ""
            self.stdout.write(f"Purged {count} message(s) from {queue}{kept}.")
        if len(removed) > 1:
            self.stdout.write(f"Purged {sum(removed.values())} message(s) in all.")
