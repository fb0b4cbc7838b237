"""The in-memory schedule: a heap of entries ordered by next due time.

The leader asks ``seconds_until_next()`` how long to sleep, pops what is due
(or due within the send-ahead horizon) with ``pop_due()``, sends it, and
reports back with ``sent()``. Nothing here touches Redis or the database: it
works from snapshots (``Entry``), records what must be written back in
``pending``, and is unit-testable with a fake clock. Changing an entry
invalidates its old heap item lazily (a generation number), so a reload
costs O(changed rows), not a heap rebuild.

Runs sent ahead of their due time are kept in ``ahead`` (ahead.py) and
count as sent only when their due time comes (``confirm()``). When their
periodic task changes or goes away first, they move to ``withdrawals``: the
leader takes them back from Redis before it sends anything else, and
reports with ``withdrawn()``. The entry itself is recomputed from its last
run *sent*, so an edited task's run is sent again with the new options.
"""

from __future__ import annotations

import datetime as dt
import heapq
import logging
from dataclasses import dataclass, field

from django_taskq.beat.ahead import AheadBook, AheadRun
from django_taskq.beat.dispatch import Outcome, Run
from django_taskq.beat.entry import Entry

logger = logging.getLogger("django_taskq.beat")


@dataclass
class Pending:
    """What to write back to one PeriodicTask row."""

    last_run_at: dt.datetime | None = None
    runs: int = 0
    disable: bool = False


@dataclass
class Scheduler:
    """Entries by id, a heap of (due epoch seconds, id, generation) and pending writes."""

    entries: dict[int, Entry] = field(default_factory=dict)
    heap: list[tuple[float, int, int]] = field(default_factory=list)
    generations: dict[int, int] = field(default_factory=dict)
    pending: dict[int, Pending] = field(default_factory=dict)
    #: Due times up to this were the previous leader's to send (a handover):
    #: each one it did not send is sent, one by one, instead of collapsed.
    handover_until: dt.datetime | None = None
    #: Runs queued ahead of their due time, not yet counted as sent.
    ahead: AheadBook = field(default_factory=AheadBook)
    #: Runs queued ahead whose periodic task changed or went away: to be
    #: taken back from Redis before anything else is sent.
    withdrawals: list[AheadRun] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.entries)

    # -- loading ----------------------------------------------------------------

    def replace_all(self, fresh: list[Entry], last_sent: dict[int, dt.datetime]) -> int:
        """Make the schedule match ``fresh`` (all enabled rows); returns rows (re)computed.

        Unchanged rows keep their state; changed and new ones get a new due time.
        """
        seen = set()
        changed = 0
        for entry in fresh:
            seen.add(entry.id)
            changed += self.upsert(entry, last_sent.get(entry.id))
        for gone in set(self.entries) - seen:
            self.remove(gone)
        return changed

    def upsert(self, entry: Entry, last_sent: dt.datetime | None = None) -> int:
        """Add or update one entry; returns 1 if its due time was (re)computed."""
        old = self.entries.get(entry.id)
        if old is not None and old.fingerprint == entry.fingerprint:
            return 0
        # Runs queued ahead were built from the old row: take them back; the
        # due times are recomputed below from the last run actually sent.
        self.withdrawals.extend(self.ahead.take_entry(entry.id))
        lasts = [t for t in (entry.last_run_at, last_sent) if t is not None]
        if old is not None and old.last_run_at is not None:
            lasts.append(old.last_run_at)
        pending = self.pending.get(entry.id)
        if pending is not None and pending.last_run_at is not None:
            lasts.append(pending.last_run_at)
        entry.last_run_at = max(lasts) if lasts else None
        entry.next_due = entry.first_due()
        self.entries[entry.id] = entry
        self._push(entry)
        return 1

    def remove(self, entry_id: int) -> None:
        self.withdrawals.extend(self.ahead.take_entry(entry_id))
        self.entries.pop(entry_id, None)
        self.generations[entry_id] = self.generations.get(entry_id, 0) + 1

    def _push(self, entry: Entry) -> None:
        generation = self.generations.get(entry.id, 0) + 1
        self.generations[entry.id] = generation
        if entry.next_due is not None:
            heapq.heappush(self.heap, (entry.next_due.timestamp(), entry.id, generation))
        if len(self.heap) > 2 * len(self.entries) + 1000:
            # Superseded items of far-future runs would otherwise pile up
            # when rows are edited again and again; drop them in one pass.
            self.heap = [item for item in self.heap if self._live(item)]
            heapq.heapify(self.heap)

    def _live(self, item: tuple[float, int, int]) -> bool:
        _, entry_id, generation = item
        return entry_id in self.entries and self.generations.get(entry_id) == generation

    # -- running ------------------------------------------------------------------

    def next_due(self) -> dt.datetime | None:
        """The earliest due time in the schedule (dropping stale heap items)."""
        while self.heap and not self._live(self.heap[0]):
            heapq.heappop(self.heap)
        if not self.heap:
            return None
        entry = self.entries[self.heap[0][1]]
        return entry.next_due

    def seconds_until_next(self, now: dt.datetime, ahead: float = 0.0) -> float | None:
        """Seconds until a run is to be sent: its due time, less ``ahead`` seconds."""
        due = self.next_due()
        if due is None:
            return None
        return max(0.0, (due - now).total_seconds() - ahead)

    def pop_due(self, now: dt.datetime, limit: int = 500, ahead: float = 0.0) -> list[Run]:
        """Take up to ``limit`` runs due by ``now`` + ``ahead`` seconds off the heap.

        Runs due by ``now`` are sent at once, missed runs collapsed into
        one; runs due later, within ``ahead``, are sent ahead (queued until
        their due time) and are never missed or stale.

        Runs the missed-run policy says to skip are skipped here (logged)
        and their entries moved on to the next due time. The policy is for
        downtime of every beat: due times up to ``handover_until`` (the moment
        this beat took over from a leader that was alive until moments
        before) are each sent, in order, unless max_staleness says a run is
        too late; their once keys make any the old leader did send a no-op.
        """
        runs: list[Run] = []
        horizon = now.timestamp() + ahead
        while self.heap and len(runs) < limit:
            item = self.heap[0]
            if not self._live(item):
                heapq.heappop(self.heap)
                continue
            if item[0] > horizon:
                break
            heapq.heappop(self.heap)
            entry = self.entries[item[1]]
            handed_over = (
                self.handover_until is not None
                and entry.next_due is not None
                and entry.next_due <= self.handover_until
                and entry.kind != "clocked"
            )
            due = (
                entry.next_due
                if handed_over and entry.next_due is not None
                else entry.catch_up(now)
            )
            if entry.is_stale(due, now):
                logger.warning(
                    "periodic task %r: skipped the run due at %s, late by %.0fs (more than its "
                    "max_staleness of %ss)",
                    entry.name,
                    due.isoformat(),
                    (now - due).total_seconds(),
                    f"{entry.max_staleness:g}",
                )
                self._advance(entry, due)
                continue
            if self.ahead.holds(entry.id, due):
                self._advance(entry, due)  # queued ahead already
                continue
            if due != entry.next_due:
                logger.info(
                    "periodic task %r: runs due from %s to %s were missed; sending one",
                    entry.name,
                    entry.next_due.isoformat() if entry.next_due else "?",
                    due.isoformat(),
                )
            runs.append(Run(options=entry.options, due=due))
        return runs

    def _advance(self, entry: Entry, due: dt.datetime) -> None:
        entry.next_due = entry.following(due)
        self._push(entry)

    def sent(self, outcomes: list[Outcome]) -> None:
        """Record what happened to popped runs and move their entries on.

        A run sent ahead (or found queued ahead by another beat) goes into
        ``ahead`` and is recorded as sent when it comes due (``confirm``).
        """
        duplicates = 0
        for outcome in outcomes:
            run = outcome.run
            entry = self.entries.get(run.options.periodic_task_id)
            if outcome.error is not None:
                logger.error(
                    "periodic task %r: could not send the run due at %s: %s",
                    run.options.name,
                    run.due.isoformat(),
                    outcome.error,
                )
            elif outcome.duplicate:
                duplicates += 1
                logger.debug(
                    "periodic task %r: run due at %s was already sent (by another beat)",
                    run.options.name,
                    run.due.isoformat(),
                )
            if entry is None:  # deleted or disabled while its run was in flight
                if outcome.error is None and outcome.ahead and outcome.queue and outcome.task_id:
                    self.withdrawals.append(
                        AheadRun(
                            run.options.periodic_task_id,
                            run.due,
                            outcome.queue,
                            outcome.task_id,
                            sent=outcome.sent,
                            name=run.options.name,
                        )
                    )
                continue
            if outcome.error is None and outcome.ahead:
                assert outcome.queue is not None and outcome.task_id is not None
                self.ahead.add(
                    AheadRun(
                        entry.id,
                        run.due,
                        outcome.queue,
                        outcome.task_id,
                        sent=outcome.sent,
                        name=entry.name,
                    )
                )
            elif outcome.error is None:
                self._record(entry.id, run.due, outcome.sent, entry)
            self._advance(entry, run.due)
            self._retire_if_done(entry)
        if duplicates:
            logger.info(
                "%d run(s) were already sent (by another beat, or before a leader change)",
                duplicates,
            )

    def confirm(self, runs: list[AheadRun]) -> None:
        """Record runs queued ahead whose due time has come: they are sent now."""
        for run in runs:
            entry = self.entries.get(run.entry_id)
            self._record(run.entry_id, run.due, run.sent, entry)
            if entry is not None:
                self._retire_if_done(entry)

    def withdrawn(self, runs: list[AheadRun], results: list[bool]) -> None:
        """Report on taken-back runs: True withdrawn, False promoted already (so sent)."""
        for run, withdrawn in zip(runs, results, strict=True):
            entry = self.entries.get(run.entry_id)
            if withdrawn:
                logger.info(
                    "periodic task %r: took back the run due at %s, queued before the task "
                    "changed (%s)",
                    run.name or f"#{run.entry_id}",
                    run.due.isoformat(),
                    "to be sent as it is now" if entry is not None else "disabled or deleted",
                )
                continue
            # Its due time came before the change reached us: it ran as queued.
            self._record(run.entry_id, run.due, run.sent, entry)
            if entry is not None and entry.next_due is not None and entry.next_due <= run.due:
                self._advance(entry, run.due)
                self._retire_if_done(entry)

    def _record(self, entry_id: int, due: dt.datetime, sent: bool, entry: Entry | None) -> None:
        """A run is sent: remember its due time for the write-back (and the entry)."""
        if entry is not None:
            entry.last_run_at = due if entry.last_run_at is None else max(entry.last_run_at, due)
        pending = self.pending.setdefault(entry_id, Pending())
        if pending.last_run_at is None or due > pending.last_run_at:
            pending.last_run_at = due
        pending.runs += 1 if sent else 0
        pending.disable = pending.disable or (entry is not None and entry.one_off)

    def _retire_if_done(self, entry: Entry) -> None:
        """Drop an entry with no run left, once none of its runs waits to be confirmed."""
        if entry.next_due is None and not self.ahead.has(entry.id):
            self.remove(entry.id)

    def drop_ahead(self) -> None:
        """Forget runs queued ahead (this beat stopped leading; the next leader adopts them)."""
        self.ahead.clear()
        self.withdrawals.clear()

    def unsent(self, runs: list[Run]) -> None:
        """Put popped runs back (sending failed as a whole; they stay due)."""
        for run in runs:
            entry = self.entries.get(run.options.periodic_task_id)
            if entry is not None:
                self._push(entry)

    def take_pending(self) -> dict[int, Pending]:
        pending, self.pending = self.pending, {}
        return pending

    def restore_pending(self, pending: dict[int, Pending]) -> None:
        """Merge writes that failed back in (newer values win)."""
        for entry_id, old in pending.items():
            new = self.pending.get(entry_id)
            if new is None:
                self.pending[entry_id] = old
                continue
            if old.last_run_at is not None and (
                new.last_run_at is None or old.last_run_at > new.last_run_at
            ):
                new.last_run_at = old.last_run_at
            new.runs += old.runs
            new.disable = new.disable or old.disable
