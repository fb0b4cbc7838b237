"""``manage.py demo_send``: send the example tasks and print what comes back.

A worker must be running (``python manage.py taskq_worker``); ``scripts/demo``
starts one. Exits non-zero if a result is missing or not what the demo expects.
"""

from __future__ import annotations

import time
import uuid
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from django_taskq import AsyncResult, states
from django_taskq.broker.connection import broker_url, redact
from django_taskq.exceptions import TaskqError, TimeoutError


class Command(BaseCommand):
    help = "Send a few example tasks to the worker and print their results."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--timeout",
            type=float,
            default=30.0,
            help="Seconds to wait for each result (default 30).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            self.run(float(options["timeout"]))
        except TimeoutError as exc:
            raise CommandError(
                f"{exc}. Is a worker running? Start one with: python manage.py taskq_worker"
            ) from exc
        except TaskqError as exc:
            raise CommandError(str(exc)) from exc

    def run(self, timeout: float) -> None:
        from demo.tasks import (
            add,
            count_users,
            divide,
            flaky_fetch,
            look_up,
            refresh_report,
            remind,
            slow_count,
        )

        out = self.stdout
        out.write(f"Sending tasks through {redact(broker_url())}\n")
        sent_at = time.time()
        calls: list[tuple[str, AsyncResult]] = [
            ("add.delay(2, 3)", add.delay(2, 3)),
            ("add.apply_async((40, 2), priority=9)", add.apply_async((40, 2), priority=9)),
            ("flaky_fetch.delay('https://example.com')", flaky_fetch.delay("https://example.com")),
            ("slow_count.delay(5, 0.3)", slow_count.delay(5, 0.3)),
            (
                "remind.apply_async(countdown=2)",
                remind.apply_async(("stand up and stretch", sent_at), countdown=2),
            ),
            ("divide.delay(1, 0)", divide.delay(1, 0)),
            ("count_users.delay()", count_users.delay()),
        ]
        width = max(len(label) for label, _ in calls)
        for label, result in calls:
            out.write(f"  sent {label:<{width}}  id={result.id}\n")

        out.write("\nProgress of slow_count (custom state from update_state):\n")
        self.show_progress(calls[3][1], timeout)

        out.write("\nResults (AsyncResult.get() wakes as soon as a result is stored):\n")
        problems: list[str] = []
        values: dict[str, Any] = {}
        for label, result in calls:
            started = time.monotonic()
            value = result.get(timeout=timeout, propagate=False)
            waited = time.monotonic() - started
            if isinstance(value, Exception):
                shown = f"{type(value).__name__}: {value}"
            else:
                shown = repr(value)
            extra = f", retries={result.retries}" if result.retries else ""
            out.write(
                f"  {label:<{width}}  {result.state:<8} {shown}{extra} (waited {waited:.2f}s)\n"
            )
            values[label] = (result.state, value)

        expected_states = {label: states.SUCCESS for label, _ in calls}
        expected_states["divide.delay(1, 0)"] = states.FAILURE
        for label, (state, _) in values.items():
            if state != expected_states[label]:
                problems.append(f"{label}: state {state}, expected {expected_states[label]}")
        if values["add.delay(2, 3)"][1] != 5:
            problems.append(f"add(2, 3) returned {values['add.delay(2, 3)'][1]!r}")
        if not isinstance(values["divide.delay(1, 0)"][1], ZeroDivisionError):
            problems.append("divide(1, 0) did not fail with ZeroDivisionError")
        reminder = values["remind.apply_async(countdown=2)"][1]
        if isinstance(reminder, dict) and reminder.get("ran_after", 0) < 1.9:
            problems.append(
                f"remind ran {reminder['ran_after']}s after sending, before its countdown"
            )

        # A unique task: a second send while the first is queued or running
        # returns the first one (existing=True) instead of sending another.
        report = f"sales-{uuid.uuid4().hex[:6]}"
        first, again = refresh_report.delay(report), refresh_report.delay(report)
        out.write(
            f"\nrefresh_report.delay({report!r}) twice: the same task "
            f"({again.id == first.id}, existing={again.existing}), "
            f"{first.get(timeout=timeout)!r}\n"
        )
        if again.id != first.id or not again.existing:
            problems.append("a second send of a unique task sent another task")

        # async def tasks: each worker process runs up to
        # TASKQ_WORKER_ASYNC_CONCURRENCY of them at once on its event loop.
        lookups = [look_up.delay(f"host-{i}", 0.5) for i in range(10)]
        found = [r.get(timeout=timeout) for r in lookups]
        spans = [(f["began"], f["ended"]) for f in found]
        most = max(sum(1 for b, e in spans if b <= began < e) for began, _ in spans)
        out.write(
            f"\nlook_up.delay(...) x10 (async def, 0.5 s each): all done "
            f"{max(e for _, e in spans) - min(b for b, _ in spans):.2f}s after the first "
            f"began, up to {most} at once\n"
        )
        if [f["name"] for f in found] != [f"host-{i}" for i in range(10)]:
            problems.append("look_up returned other names")

        never_sent = AsyncResult(str(uuid.uuid4()))
        out.write(
            f"\nAn id that was never sent: state={never_sent.state}, "
            f"exists()={never_sent.exists()}\n"
        )
        if never_sent.exists():
            problems.append("a random id claims to exist")

        if problems:
            raise CommandError("the demo did not go as expected:\n  " + "\n  ".join(problems))
        out.write(self.style.SUCCESS(f"\nAll {len(calls)} tasks done as expected.\n"))

    def show_progress(self, result: AsyncResult, timeout: float) -> None:
        """Print each new state of ``result`` until it is ready.

        Reading the state a few times a second is fine for showing progress to
        a person; to wait for the result itself, use ``get()``, which blocks.
        """
        deadline = time.monotonic() + timeout
        seen: tuple[str, Any] | None = None
        while time.monotonic() < deadline:
            state, info = result.state, result.info
            if (state, info) != seen:
                self.stdout.write(f"  {state:<8} {info!r}\n")
                seen = (state, info)
            if state in states.READY_STATES:
                return
            time.sleep(0.05)
        raise TimeoutError(f"task {result.id} did not finish within {timeout}s")
