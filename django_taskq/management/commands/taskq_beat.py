"""``python manage.py taskq_beat``: run the periodic task scheduler.

Run as many as you like (on different hosts for high availability): one
is elected leader through a Redis lease and sends due runs; the others wait
to take over. SIGTERM or Ctrl-C stops it cleanly: pending run times are
written and the lease is released so a follower takes over at once.
"""

from __future__ import annotations

import socket
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_taskq.beat import run_beat
from django_taskq.management.foreground import configure_logging, stop_on_signals
from django_taskq.management.loglevel import add_loglevel_argument


class Command(BaseCommand):
    help = "Run beat: send periodic tasks when due (any number may run; one leads)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "-n",
            "--hostname",
            default=socket.gethostname(),
            help="Name shown in logs and in the leader lease (default: this host's name).",
        )
        add_loglevel_argument(
            parser, help="Log level for django_taskq when LOGGING does not configure it."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        configure_logging(options["loglevel"])
        stop = stop_on_signals("django_taskq.beat", "beat")
        try:
            run_beat(stop, hostname=options["hostname"])
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from exc
