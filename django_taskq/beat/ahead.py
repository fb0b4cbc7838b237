"""Runs sent ahead: queued in their queue's delayed set, due in the next few seconds.

Python cannot build, encode and publish thousands of messages in the
milliseconds after the instant they are due. So the leader sends each run
up to TASKQ_BEAT_SEND_AHEAD seconds early, as an ETA message (its ``eta`` is
the due time) under the run's once key, and at the due instant only
promote.lua has to run, all inside Redis: the lateness of a burst is the
promotion's, not Python's.

Until its due time such a run is only *queued*, not *sent*: it is not yet
counted in ``last_run_at``, ``total_run_count`` or ``beat:last``, and a
change to its periodic task (edit, disable, delete) withdraws it (removes
the message and its once key in one Lua step), so the schedule recomputes
it with the row as it is now. ``AheadBook`` is the leader's in-memory list
of such runs; it touches no Redis and no database.

A run's task id is derived from the run itself (``dispatch.run_task_id``),
so a new leader that finds a run already queued (its once key exists) knows
the message's id, and can withdraw it too.
"""

from __future__ import annotations

import datetime as dt
import heapq
import math
from dataclasses import dataclass, field

from django.core.exceptions import ImproperlyConfigured

from django_taskq.beat.entry import epoch_ms
from django_taskq.conf import taskq_settings


def send_ahead_seconds() -> float:
    """TASKQ_BEAT_SEND_AHEAD, checked: seconds >= 0, well under TASKQ_BEAT_RUN_KEY_TTL.

    A run's once key is set when it is sent ahead, so it must outlive the
    wait for the due time by far (it guards against a second beat sending
    the run after that).
    """
    value = taskq_settings.BEAT_SEND_AHEAD
    ttl = taskq_settings.BEAT_RUN_KEY_TTL
    number = isinstance(value, int | float) and not isinstance(value, bool)
    try:
        ttl_seconds = float(ttl)
    except (TypeError, ValueError):  # taskq.E003 names TASKQ_BEAT_RUN_KEY_TTL itself
        ttl_seconds = math.inf
    if not number or not 0 <= value <= 60 or (number and value * 10 > ttl_seconds):
        raise ImproperlyConfigured(
            f"TASKQ_BEAT_SEND_AHEAD={value!r} must be a number of seconds from 0 to 60, and "
            f"at most a tenth of TASKQ_BEAT_RUN_KEY_TTL ({ttl!r}); 0 sends runs when due."
        )
    return float(value)


@dataclass(frozen=True)
class AheadRun:
    """One run queued in a delayed set before its due time."""

    entry_id: int
    due: dt.datetime
    queue: str
    task_id: str
    #: True if this beat's publish queued it; False if it was queued already
    #: (by another beat, or before a leader change) and this beat adopted it.
    sent: bool = True
    #: The periodic task's name, for the logs.
    name: str = ""

    @property
    def due_ms(self) -> int:
        return epoch_ms(self.due)


@dataclass
class AheadBook:
    """Runs queued ahead, by periodic task, and the queues to promote at each due time."""

    by_entry: dict[int, dict[int, AheadRun]] = field(default_factory=dict)
    #: due ms -> queues holding a run due then; plus a heap of those due times.
    queues_at: dict[int, set[str]] = field(default_factory=dict)
    due_heap: list[int] = field(default_factory=list)
    #: Runs whose due time has come and that wait to be recorded as sent.
    run_heap: list[tuple[int, int]] = field(default_factory=list)

    def __len__(self) -> int:
        return sum(len(runs) for runs in self.by_entry.values())

    def add(self, run: AheadRun) -> None:
        due_ms = run.due_ms
        self.by_entry.setdefault(run.entry_id, {})[due_ms] = run
        queues = self.queues_at.get(due_ms)
        if queues is None:
            queues = self.queues_at[due_ms] = set()
            heapq.heappush(self.due_heap, due_ms)
        queues.add(run.queue)
        heapq.heappush(self.run_heap, (due_ms, run.entry_id))

    def has(self, entry_id: int) -> bool:
        return bool(self.by_entry.get(entry_id))

    def holds(self, entry_id: int, due: dt.datetime) -> bool:
        """True if the run of ``entry_id`` due at ``due`` is queued ahead already."""
        return epoch_ms(due) in self.by_entry.get(entry_id, {})

    def next_promotion(self) -> int | None:
        """Epoch ms of the earliest due time whose queues still have to be promoted."""
        return self.due_heap[0] if self.due_heap else None

    def queues_due(self, now_ms: int) -> set[str]:
        """The queues to promote now: those with runs due by ``now_ms`` (each given once).

        Cheap on purpose (no work per run): this is what the leader does at
        the due instant, before anything else.
        """
        queues: set[str] = set()
        while self.due_heap and self.due_heap[0] <= now_ms:
            queues |= self.queues_at.pop(heapq.heappop(self.due_heap), set())
        return queues

    def take_due(self, now_ms: int) -> list[AheadRun]:
        """Remove and return the runs due by ``now_ms`` (to be recorded as sent)."""
        taken: list[AheadRun] = []
        while self.run_heap and self.run_heap[0][0] <= now_ms:
            due_ms, entry_id = heapq.heappop(self.run_heap)
            runs = self.by_entry.get(entry_id)
            run = runs.pop(due_ms, None) if runs is not None else None
            if run is None:
                continue  # withdrawn meanwhile
            if not runs:
                del self.by_entry[entry_id]
            taken.append(run)
        return taken

    def take_entry(self, entry_id: int) -> list[AheadRun]:
        """Remove and return every run of one periodic task (to withdraw them), earliest first.

        Their due times stay in the promotion heap: promoting a queue with
        nothing due is a no-op.
        """
        runs = self.by_entry.pop(entry_id, {})
        return [runs[due_ms] for due_ms in sorted(runs)]

    def clear(self) -> None:
        """Forget every run (this beat no longer leads; the next leader adopts them)."""
        self.by_entry.clear()
        self.queues_at.clear()
        self.due_heap.clear()
        self.run_heap.clear()
