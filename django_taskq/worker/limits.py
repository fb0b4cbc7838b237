"""Time limits inside a consumer: the soft limit raises in the task.

The soft limit arms ``SIGALRM``; its handler raises SoftTimeLimitExceeded in
the task, which may catch it to clean up. The hard limit of a prefork child
is enforced by the parent, which kills the child (nothing inside a task can
stop that). In the solo pool, where no parent watches, the same alarm raises
TimeLimitExceeded at the hard limit instead: best effort, as it cannot
interrupt code that does not return to Python.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from django_taskq.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


class TimeLimits:
    """Worker-wide default limits and the alarm that enforces them."""

    def __init__(self, soft: float | None, hard: float | None, *, soft_only: bool) -> None:
        self.default_soft = soft
        self.default_hard = hard
        self.soft_only = soft_only  # the parent enforces the hard limit
        self._hard_after_soft: float | None = None
        self._message = ""

    def effective(
        self, soft: float | None, hard: float | None
    ) -> tuple[float | None, float | None]:
        return (
            soft if soft is not None else self.default_soft,
            hard if hard is not None else self.default_hard,
        )

    def unlimited(self, soft: float | None, hard: float | None) -> bool:
        """True when no limit applies to a call (``applied()`` would do nothing)."""
        return (
            soft is None
            and hard is None
            and self.default_soft is None
            and self.default_hard is None
        )

    @contextmanager
    def applied(self, soft: float | None, hard: float | None) -> Iterator[None]:
        soft, hard = self.effective(soft, hard)
        usable = threading.current_thread() is threading.main_thread()
        first: float | None = None
        if usable:
            local_hard = None if self.soft_only else hard
            if soft is not None:
                first = soft
                self._hard_after_soft = (
                    (local_hard - soft) if local_hard and local_hard > soft else None
                )
                self._message = f"soft time limit ({soft}s) exceeded"
            elif local_hard is not None:
                first = local_hard
                self._hard_after_soft = None
                self._message = f"hard time limit ({local_hard}s) exceeded"
        if first is None:
            yield
            return
        previous = signal.signal(signal.SIGALRM, self._on_alarm)
        signal.setitimer(signal.ITIMER_REAL, first)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)

    def _on_alarm(self, signum: int, frame: FrameType | None) -> None:
        if self._message.startswith("soft"):
            if self._hard_after_soft:
                signal.setitimer(signal.ITIMER_REAL, self._hard_after_soft)
                self._message = "hard time limit exceeded"
            raise SoftTimeLimitExceeded(self._message)
        raise TimeLimitExceeded(self._message)
