"""``manage.py taskq_control``: change running workers (``celery control``).

Subcommands: ``rate_limit TASK RATE``, ``time_limit TASK SOFT HARD``,
``shutdown``, ``pool_grow [N]``, ``pool_shrink [N]``, ``add_consumer QUEUE``,
``cancel_consumer QUEUE``. Each waits for the workers' replies and names
those that did not reply in time (exit status 1).
"""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq import control
from django_taskq.management.errors import reports_broker_errors
from django_taskq.management.replies import (
    add_remote_options,
    remote_kwargs,
    render_mapping,
    report,
)

#: Subcommands that apply to every worker (kept in Redis): no --destination.
EVERY_WORKER = ("rate_limit", "time_limit")


class Command(BaseCommand):
    help = (
        "Change running workers: rate_limit, time_limit, shutdown, pool_grow, pool_shrink, "
        "add_consumer, cancel_consumer. Waits for their replies."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)
        p = sub.add_parser(
            "rate_limit",
            help="Change a task's rate limit on every worker, now and for workers started later.",
        )
        p.add_argument("task", help="Registered task name.")
        p.add_argument(
            "rate", nargs="?", help='"10/s", "100/m", "1000/h", a number per second, or 0 (none).'
        )
        p.add_argument("--reset", action="store_true", help="Back to the declared rate limit.")
        p = sub.add_parser(
            "time_limit", help="Change a task's soft and hard time limits on every worker."
        )
        p.add_argument("task", help="Registered task name.")
        p.add_argument("soft", nargs="?", help="Soft limit in seconds, or none.")
        p.add_argument("hard", nargs="?", help="Hard limit in seconds, or none.")
        p.add_argument(
            "--reset", action="store_true", help="Back to the limits each message carries."
        )
        sub.add_parser("shutdown", help="Warm shutdown: finish running tasks, then exit.")
        for name, text in (
            ("pool_grow", "Start N more child processes (prefork; default 1)."),
            ("pool_shrink", "Stop N child processes after their task (prefork; default 1)."),
        ):
            subparser = sub.add_parser(name, help=text)
            subparser.add_argument(
                "n", nargs="?", type=int, default=1
            )  # checked with its own message
        for name, text in (
            ("add_consumer", "Consume QUEUE too."),
            ("cancel_consumer", "Stop consuming QUEUE."),
        ):
            sub.add_parser(name, help=text).add_argument("queue", help="Queue name.")
        for name, subparser in sub.choices.items():
            if name in EVERY_WORKER:
                add_remote_options(subparser, "Not accepted: the limit applies to every worker.")
            else:
                add_remote_options(subparser)

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        name = options["subcommand"]
        kwargs = remote_kwargs(options)
        if name in EVERY_WORKER and kwargs.pop("destination"):
            raise CommandError(
                f"{name} applies to every worker and cannot take -d/--destination: the "
                "limit is kept in Redis for all workers, those started later included "
                "(a rate limit is one token bucket per task for the whole cluster)"
            )
        calls: dict[str, Callable[[], control.Replies]] = {
            "rate_limit": lambda: self._rate_limit(options, kwargs),
            "time_limit": lambda: self._time_limit(options, kwargs),
            "shutdown": lambda: control.shutdown(**kwargs),
            "pool_grow": lambda: control.pool_grow(options.get("n", 1), **kwargs),
            "pool_shrink": lambda: control.pool_shrink(options.get("n", 1), **kwargs),
            "add_consumer": lambda: control.add_consumer(options.get("queue", ""), **kwargs),
            "cancel_consumer": lambda: control.cancel_consumer(options.get("queue", ""), **kwargs),
        }
        report(self, calls[name], render_mapping, bool(options.get("json")))

    def _rate_limit(self, options: dict[str, Any], kwargs: dict[str, Any]) -> control.Replies:
        if options["reset"]:
            return control.rate_limit(options["task"], None, reset=True, **kwargs)
        if options["rate"] is None:
            raise CommandError("rate_limit needs a RATE (or --reset)")
        return control.rate_limit(options["task"], options["rate"], **kwargs)

    def _time_limit(self, options: dict[str, Any], kwargs: dict[str, Any]) -> control.Replies:
        if options["reset"]:
            return control.time_limit(options["task"], reset=True, **kwargs)
        if options["soft"] is None or options["hard"] is None:
            raise CommandError("time_limit needs SOFT and HARD seconds, or none (or --reset)")
        soft = _seconds(options["soft"], "SOFT")
        hard = _seconds(options["hard"], "HARD")
        return control.time_limit(options["task"], soft, hard, **kwargs)


def _seconds(text: str, which: str) -> float | None:
    """A limit as given: ``none`` or ``0`` for no limit, else seconds."""
    if text.strip().lower() in ("none", "null", "0", ""):
        return None
    try:
        return float(text)
    except ValueError:
        raise CommandError(
            f"time_limit: {which} must be a number of seconds or none, not {text!r}"
        ) from None
