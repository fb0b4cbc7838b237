"""``python manage.py taskq_recorder``: write task history (TaskRecord rows) in the foreground.

Workers run the recorder themselves by default (TASKQ_HISTORY); run this
instead (with TASKQ_HISTORY = False in the workers' settings) to keep
database writes off the worker hosts, or beside them: one recorder records
at a time, the others stand by. SIGTERM or Ctrl-C stops it after the batch
it is writing, and releases its lease so a standby takes over at once.
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_taskq.history.recorder import LEASE_SECONDS, run_recorder
from django_taskq.management import numbers
from django_taskq.management.foreground import configure_logging, stop_on_signals
from django_taskq.management.loglevel import add_loglevel_argument


class Command(BaseCommand):
    help = "Record task events into the task history (any number may run; one records)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--hostname",
            default=socket.gethostname(),
            help="Name shown in logs and in the recorder lease (default: this host's name).",
        )
        parser.add_argument(
            "--lease",
            type=numbers.seconds(1, strict=False),
            default=LEASE_SECONDS,
            metavar="SECONDS",
            help=(
                "Life of the recorder lease: a standby takes over this long after the "
                f"recorder dies (default {LEASE_SECONDS:g}, at least 1)."
            ),
        )
        add_loglevel_argument(
            parser, help="Log level for django_taskq when LOGGING does not configure it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["loglevel"])
        stop = stop_on_signals("django_taskq.history", "history recorder")
        run_recorder(stop, hostname=options["hostname"], lease_seconds=options["lease"])
