"""``manage.py taskq_dead``: list, requeue or delete dead-lettered messages.

The list shows each message decoded (task, content, arguments) whatever
its serializer or compression (``monitor.display.describe``). Requeueing
named entries refuses, with the reason, those no worker could decode
(``control.requeue_refusals``); ``--force`` requeues them all the same.
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq import bodies
from django_taskq.control import dead_letters, delete_dead, requeue_dead, requeue_refusals
from django_taskq.management import numbers
from django_taskq.management.errors import reports_broker_errors


class Command(BaseCommand):
    help = "List dead letters with their reason, put them back on their queues, or delete them."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--count", type=numbers.positive, default=20, help="How many to list (newest first)."
        )
        parser.add_argument(
            "-Q",
            "--queue",
            default=None,
            help="Only this queue's dead letters (default: every queue).",
        )
        action = parser.add_mutually_exclusive_group()
        action.add_argument(
            "--requeue",
            nargs="*",
            metavar="ENTRY_ID",
            help="Requeue these dead letters (all of the queues when no id is given).",
        )
        action.add_argument(
            "--delete",
            nargs="*",
            metavar="ENTRY_ID",
            help="Delete these dead letters for good (all of the queues when no id is given).",
        )
        parser.add_argument(
            "-f",
            "--force",
            action="store_true",
            help="Delete all without asking; requeue named entries even if their body cannot be "
            "decoded.",
        )

    @reports_broker_errors
    def handle(self, *args: Any, **options: Any) -> None:
        queue = options["queue"]
        try:
            if options["requeue"] is not None:
                ids = options["requeue"] or None
                if ids is not None and not options["force"]:
                    ids = self._refuse_undecodable(ids, queue)
                    if not ids:
                        raise CommandError("nothing requeued")
                moved = requeue_dead(ids, queue=queue)
                self.stdout.write(f"Requeued {moved} dead letter(s).")
                self._not_found(ids, moved)
                return
            if options["delete"] is not None:
                ids = options["delete"] or None
                if ids is None and not options["force"]:
                    self._confirm(queue)
                deleted = delete_dead(ids, queue=queue)
                self.stdout.write(f"Deleted {deleted} dead letter(s).")
                self._not_found(ids, deleted)
                return
            rows = dead_letters(options["count"], queue=queue)
        except ValueError as exc:  # a malformed entry id or queue name
            raise CommandError(str(exc)) from None
        if not rows:
            self.stdout.write("No dead letters.")
        for row in rows:
            self.stdout.write(
                f"{row['entry_id']}  task id {row.get('i') or '?'}  on {row.get('stream', '?')}"
            )
            self.stdout.write(f"    {_message(row)}")
            self.stdout.write(f"    reason: {row.get('reason', '')}")

    def _refuse_undecodable(self, ids: list[str], queue: str | None) -> list[str]:
        """The ids worth requeueing; a line on stderr for each that is not, with why."""
        refused = requeue_refusals(ids, queue=queue)
        for entry_id, reason in refused.items():
            self.stderr.write(
                f"Not requeued: {entry_id}: {reason}. A worker would dead-letter it again; "
                "delete it, or add --force to requeue it all the same."
            )
        return [i for i in ids if i not in refused]

    def _not_found(self, ids: list[str] | None, done: int) -> None:
        if ids is not None and done < len(set(ids)):
            self.stderr.write(
                f"Warning: {len(set(ids)) - done} of the {len(set(ids))} entry id(s) were not "
                "found (requeued or deleted already? taskq_dead lists the current ones)."
            )

    def _confirm(self, queue: str | None) -> None:
        where = f"queue {queue}" if queue else "every queue"
        try:
            answer = input(f"Delete every dead letter of {where} for good? [y/N] ")
        except (EOFError, OSError):  # no stdin, or one that cannot be read
            raise CommandError("no terminal to confirm on: use --force") from None
        if answer.strip().lower() not in {"y", "yes"}:
            raise CommandError("delete cancelled")


def _message(row: dict[str, str]) -> str:
    """The dead letter's task, content and arguments, decoded (or why they cannot be)."""
    from django_taskq.monitor.display import describe

    body = row.get("b")
    shown = describe(row.get("i"), bodies.from_text(body) if body is not None else None)
    content = f" [{shown.content}]" if shown.content != bodies.JSON else ""
    kwargs = f" kwargs={shown.kwargs}" if shown.kwargs and shown.kwargs != "{}" else ""
    return f"task {shown.task}{content} args={shown.args}{kwargs}"
