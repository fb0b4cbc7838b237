"""``manage.py taskq_call``: send a task by name from the shell (``celery call``)."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq.exceptions import NotRegistered, TaskqError
from django_taskq.exceptions import TimeoutError as TaskqTimeout
from django_taskq.management import numbers
from django_taskq.management.errors import reports_broker_errors
from django_taskq.registry import registry


class Command(BaseCommand):
    help = "Send a registered task with JSON arguments; optionally wait for its result."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="Registered task name, e.g. myapp.tasks.add")
        # dest is not "args": Django's run_from_argv() pops an option called
        # "args" before handle() sees it (it is the positional-arguments slot).
        parser.add_argument(
            "--args",
            dest="call_args",
            default="[]",
            metavar="JSON",
            help='JSON list of positional arguments, e.g. "[2, 2]"',
        )
        parser.add_argument(
            "--kwargs",
            dest="call_kwargs",
            default="{}",
            metavar="JSON",
            help="JSON object of keyword arguments, e.g. '{\"x\": 2}'",
        )
        parser.add_argument(
            "--countdown",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Run it no sooner than SECONDS from now.",
        )
        parser.add_argument(
            "--queue",
            default=None,
            help="Send it to this queue instead of the task's own (or routed) queue.",
        )
        parser.add_argument(
            "--priority",
            type=numbers.priority,
            default=None,
            metavar="0-9",
            help="Priority from 0 to 9; 9 runs first (default: the task's, else 5).",
        )
        parser.add_argument(
            "--wait",
            type=numbers.some_seconds,
            default=None,
            metavar="SECONDS",
            help="Wait up to SECONDS for the result and print its state and value.",
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            task = registry.get(options["name"])
        except NotRegistered as exc:
            raise CommandError(str(exc)) from None
        try:
            call_args = json.loads(options["call_args"])
            call_kwargs = json.loads(options["call_kwargs"])
        except ValueError as exc:
            raise CommandError(f"--args/--kwargs must be JSON: {exc}") from None
        if not isinstance(call_args, list) or not isinstance(call_kwargs, dict):
            raise CommandError("--args must be a JSON list and --kwargs a JSON object")
        try:
            result = task.apply_async(
                call_args,
                call_kwargs,
                countdown=options["countdown"],
                queue=options["queue"],
                priority=options["priority"],
            )
        except (TypeError, ValueError, TaskqError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(result.id)
        if options["wait"] is not None:
            try:
                value = result.get(timeout=options["wait"], propagate=False)
            except TaskqTimeout:
                raise CommandError(
                    f"no result within {options['wait']:g}s: task {result.id} is "
                    f"{result.state} (is a worker consuming its queue?)"
                ) from None
            self.stdout.write(f"{result.state}: {value!r}")
