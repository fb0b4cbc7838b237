"""What ``taskq_inspect`` and ``taskq_control`` share: their options and how replies are printed.

Every remote subcommand takes ``--json``, ``--timeout SECONDS`` and
``-d/--destination NAME`` (a worker's hostname or full name; repeat it for
several; all online workers by default). A run in which an expected worker
did not reply, or replied with an error, exits with status 1 after printing
what did come back, so scripts notice; with ``--json`` the JSON is still
printed on stdout.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Callable
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq.control import Replies
from django_taskq.management import numbers

Render = Callable[[Any], list[str]]


def add_remote_options(
    parser: argparse.ArgumentParser,
    destination_help: str = (
        "Ask only this worker (hostname such as taskq@web1, or full name); repeatable."
    ),
) -> None:
    """The options of a remote subcommand (defaults suppressed: the main parser may set them)."""
    parser.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="Print JSON."
    )
    parser.add_argument(
        "--timeout",
        type=numbers.some_seconds,
        default=argparse.SUPPRESS,
        metavar="SECONDS",
        help="How long to wait for replies (default TASKQ_CONTROL_TIMEOUT, 2 s).",
    )
    parser.add_argument(
        "-d",
        "--destination",
        action="append",
        default=argparse.SUPPRESS,
        metavar="NAME",
        help=destination_help,
    )


def remote_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """``timeout`` and ``destination`` for a django_taskq.control call, from the options."""
    return {"timeout": options.get("timeout"), "destination": options.get("destination")}


def report(
    command: BaseCommand, call: Callable[[], Replies], render: Render, as_json: bool
) -> None:
    """Run ``call``, print its replies (``render`` turns one result into lines), fail on gaps."""
    try:
        replies = call()
    except ValueError as exc:  # BadRequest, or a queue name that cannot be one
        raise CommandError(str(exc)) from None
    if as_json:
        command.stdout.write(json.dumps(replies.as_dict(), indent=2, default=str))
    else:
        for reply in sorted(replies.replies, key=lambda r: (r.hostname, r.worker)):
            if reply.ok:
                command.stdout.write(f"-> {reply.hostname} ({reply.worker}): OK")
                for line in render(reply.result):
                    command.stdout.write(f"    {line}")
            else:
                command.stdout.write(f"-> {reply.hostname} ({reply.worker}): ERROR {reply.error}")
    problems = []
    if replies.missing:
        problems.append(f"no reply within {replies.timeout:g}s from {', '.join(replies.missing)}")
    failed = [r.hostname for r in replies.replies if not r.ok]
    if failed:
        problems.append(f"error from {', '.join(failed)}")
    if not replies.replies and not replies.missing:
        problems.append(
            "no worker is online (none has beaten within TASKQ_WORKER_HEARTBEAT_TIMEOUT)"
        )
    if problems:
        raise CommandError("; ".join(problems))


def when(epoch: Any) -> str:
    """An epoch time as ``YYYY-MM-DD HH:MM:SS UTC`` (``-`` when missing)."""
    try:
        return dt.datetime.fromtimestamp(float(epoch), tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (TypeError, ValueError, OverflowError, OSError):
        return "-"


def render_mapping(result: Any) -> list[str]:
    """A dict as ``key: value`` lines (nested values as compact JSON)."""
    if not isinstance(result, dict):
        return [str(result)]
    lines = []
    for key, value in result.items():
        shown = value if isinstance(value, str) else json.dumps(value, default=str)
        lines.append(f"{key}: {shown}")
    return lines
