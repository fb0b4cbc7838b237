"""``manage.py taskq_call``: send a task by name from the shell."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq.exceptions import NotRegistered, TaskqError
from django_taskq.management.errors import reports_broker_errors
from django_taskq.registry import registry


class Command(BaseCommand):
    help = "Send a registered task with JSON arguments; optionally wait for its result."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("name", help="Registered task name, e.g. myapp.tasks.add")
        parser.add_argument(
            "--args", default="[]", help='JSON list of positional arguments, e.g. "[2, 2]"'
        )
        parser.add_argument("--kwargs", default="{}", help="JSON object of keyword arguments")
        parser.add_argument("--countdown", type=float, default=None)
        parser.add_argument("--queue", default=None)
        parser.add_argument("--priority", type=int, default=None)
        parser.add_argument(
            "--wait",
            type=float,
            default=None,
            metavar="SECONDS",
            help="Wait up to SECONDS for the result and print it.",
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        try:
            task = registry.get(options["name"])
        except NotRegistered as exc:
            raise CommandError(str(exc)) from None
        try:
            call_args = json.loads(options["args"])
            call_kwargs = json.loads(options["kwargs"])
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
            value = result.get(timeout=options["wait"], propagate=False)
            self.stdout.write(f"{result.state}: {value!r}")
