"""``python manage.py taskq_recorder``: write task history (TaskRecord rows) in the foreground.

Workers run the recorder themselves by default (TASKQ_HISTORY); run this
instead (with TASKQ_HISTORY = False in the workers' settings) to keep
database writes off the worker hosts, or beside them: one recorder records
at a time, the others stand by. SIGTERM or Ctrl-C stops it after the batch
it is writing, and releases its lease so a standby takes over at once.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from django_taskq.history.recorder import LEASE_SECONDS, run_recorder
from django_taskq.management.commands.taskq_beat import _configure_logging
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
            type=float,
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
        _configure_logging(options["loglevel"])
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logging.getLogger("django_taskq.history").info(
                "history recorder: got %s, stopping", signal.Signals(signum).name
            )
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        run_recorder(stop, hostname=options["hostname"], lease_seconds=options["lease"])
