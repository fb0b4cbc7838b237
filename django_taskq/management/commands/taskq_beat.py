"""``python manage.py taskq_beat``: run the periodic task scheduler.

Run as many as you like (on different hosts for high availability): one
is elected leader through a Redis lease and sends due runs; the others wait
to take over. SIGTERM or Ctrl-C stops it cleanly: pending run times are
written and the lease is released so a follower takes over at once.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from types import FrameType
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_taskq.beat import run_beat
from django_taskq.management.loglevel import add_loglevel_argument


class Command(BaseCommand):
    help = "Run beat: send periodic tasks when due (any number may run; one leads)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--hostname",
            default=socket.gethostname(),
            help="Name shown in logs and in the leader lease (default: this host's name).",
        )
        add_loglevel_argument(
            parser, help="Log level for django_taskq when LOGGING does not configure it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["loglevel"])
        stop = threading.Event()

        def on_signal(signum: int, frame: FrameType | None) -> None:
            logging.getLogger("django_taskq.beat").info(
                "beat: got %s, stopping", signal.Signals(signum).name
            )
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        try:
            run_beat(stop, hostname=options["hostname"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc


def _configure_logging(level: str) -> None:
    """Give django_taskq a console handler unless the project's LOGGING did."""
    logger = logging.getLogger("django_taskq")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
