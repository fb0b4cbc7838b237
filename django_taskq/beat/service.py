"""The beat service: follow, or lead and dispatch, until told to stop.

A beat is a follower until it wins the leader lease. The leader syncs
TASKQ_BEAT_SCHEDULE, loads enabled periodic tasks into a heap and then
blocks on a Redis pub/sub channel until the earliest of: the next time to
send (a due time less TASKQ_BEAT_SEND_AHEAD), the due time of a run sent
ahead, a change notice, the next lease renewal or version poll. It never
scans every row per tick and never sleep-polls for changes.

Runs are sent up to TASKQ_BEAT_SEND_AHEAD seconds before they are due (see
ahead.py), so that at the due instant the leader only has to promote their
queues, the first thing it does when it wakes. A change to a periodic task
takes back its runs sent ahead before anything else is sent.

Failures are expected, logged and retried with backoff: Redis down (no
lease, nothing sent; due runs stay due and are caught up per the missed-run
policy when it returns), database down (the leader keeps dispatching from
memory and writes last_run_at back when it can), a connection closed under
it (reopened on the next attempt). Nothing short of ``stop`` ends the loop.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from functools import partial
from typing import Any

import redis

from django_taskq.beat import dispatch, sendahead, store, version
from django_taskq.beat.ahead import send_ahead_seconds
from django_taskq.beat.lease import Lease, holder_id, lease_channel
from django_taskq.beat.scheduler import Scheduler
from django_taskq.beat.store import DatabaseUnavailable, guarded
from django_taskq.broker.connection import get_broker, new_client
from django_taskq.conf import taskq_settings

logger = logging.getLogger("django_taskq.beat")

#: Longest single wait, so ``stop`` is noticed within this many seconds.
MAX_WAIT = 1.0
#: Minimum gap between two write-backs of last_run_at (they are batched).
FLUSH_EVERY = 1.0
#: A dispatch of at least this many runs is logged at INFO (with how long it took).
BURST_LOG = 1000
#: After a version poll finds a change no notice explained, how long the notice
#: (which an ORM save publishes just after its commit) has to arrive before the
#: next poll reloads everything.
NOTICE_GRACE = 1.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Backoff:
    """Exponential retry delays: 0.5 s doubling up to ``cap`` seconds."""

    def __init__(self, start: float = 0.5, cap: float = 10.0) -> None:
        self.start = start
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        delay = min(self.cap, self.start * 2.0**self.failures)
        self.failures += 1
        return delay

    def reset(self) -> bool:
        """Forget failures; True if there were any (so the caller logs recovery)."""
        had = self.failures > 0
        self.failures = 0
        return had


class Beat:
    """One beat process (or thread, with ``taskq_worker -B``)."""

    def __init__(self, *, hostname: str, client: redis.Redis | None = None) -> None:
        self.hostname = hostname
        self.client = client or get_broker()
        self.lease = Lease(
            self.client, holder_id(hostname), float(taskq_settings.BEAT_LEASE_SECONDS)
        )
        self.scheduler = Scheduler()
        #: Seconds before their due time that runs are sent (0: when due).
        self.send_ahead = send_ahead_seconds()
        self.leading = False
        self.loaded = False
        self.pubsub: Any = None
        self.resubscribing = False
        self.versions: tuple[int, int | None] | None = None
        self.next_renew = 0.0
        self.next_poll = 0.0
        self.next_flush = 0.0
        self.next_load = 0.0
        self.redis_backoff = Backoff()
        self.db_backoff = Backoff()
        self.error_backoff = Backoff()
        self.changes: list[str] = []
        #: Versions a poll saw that no notice explained yet (see _poll_versions).
        self.unexplained: tuple[int, int | None] | None = None

    # -- main loop --------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Follow or lead until ``stop`` is set.

        Raises ImproperlyConfigured at once for a bad TASKQ_BEAT_SCHEDULE:
        that is a mistake to fix, not an outage to wait out.
        """
        from django_taskq.beat.sync import parse

        parse(taskq_settings.BEAT_SCHEDULE)
        logger.info(
            "beat %s starting (lease %gs, sending %gs ahead, holder %s)",
            self.hostname,
            self.lease.seconds,
            self.send_ahead,
            self.lease.holder,
        )
        try:
            while not stop.is_set():
                try:
                    if self.leading:
                        self._lead(stop)
                    else:
                        self._follow(stop)
                    if self.redis_backoff.reset():
                        logger.info("beat: Redis is reachable again")
                    self.error_backoff.reset()
                except redis.RedisError as exc:
                    self._drop_pubsub()
                    delay = self.redis_backoff.next()
                    logger.warning("beat: Redis error (%s); retrying in %.1fs", exc, delay)
                    stop.wait(delay)
                except Exception:
                    delay = self.error_backoff.next()
                    logger.exception("beat: unexpected error; retrying in %.1fs", delay)
                    stop.wait(delay)
        finally:
            self._shutdown()

    def _follow(self, stop: threading.Event) -> None:
        self._flush()  # run times sent while we led are still facts
        if self.lease.acquire():
            self._take_office()
            return
        # Wake exactly when the leader's lease would expire, or at once when
        # it releases it.
        self._wait(stop, max(0.01, self.lease.seconds_until_free() + 0.005))
        self.changes.clear()  # a follower reloads everything when it leads

    def _take_office(self) -> None:
        logger.info("beat %s is now the leader (holder %s)", self.hostname, self.lease.holder)
        self.leading = True
        self.loaded = False
        self.next_renew = time.monotonic() + self.lease.renew_every
        self.next_load = 0.0
        if self.lease.handover():
            # The old leader was alive moments ago: what it left unsent is
            # sent due time by due time, not collapsed like downtime.
            self.scheduler.handover_until = utcnow()
            logger.info("beat: took over from a leader alive moments ago; sending what it left")
        # Subscribe before loading: a change committed after the load's read
        # must reach us as a notice, not fall between the load and the first wait.
        self._subscribe()
        self._load()

    def _step_down(self, reason: str) -> None:
        logger.warning("beat %s stopped leading: %s", self.hostname, reason)
        self.leading = False
        self.loaded = False
        # Runs it sent ahead stay queued; the next leader adopts them.
        self.scheduler.drop_ahead()

    def _lead(self, stop: threading.Event) -> None:
        self._promote_ahead()  # the due instant of runs sent ahead: first, before anything
        now_m = time.monotonic()
        if now_m >= self.next_renew or not self.lease.held():
            if not self.lease.renew():
                if self.lease.acquire():
                    logger.warning("beat: the lease had expired; took it again and reloading")
                    self.loaded = False
                else:
                    self._step_down("the lease was lost to another beat")
                    return
            self.next_renew = time.monotonic() + self.lease.renew_every
        if not self.loaded and now_m >= self.next_load:
            self._load()
        elif self.loaded and self.changes:
            self._apply_changes()
        if self.loaded and now_m >= self.next_poll:
            self._poll_versions()
        self._withdraw_changed()
        self._confirm_ahead()
        self._dispatch_due()
        self._flush()
        self._wait(stop, self._timeout())

    def _timeout(self) -> float:
        now_m = time.monotonic()
        deadlines = [self.next_renew - now_m, MAX_WAIT]
        if self.loaded:
            deadlines.append(self.next_poll - now_m)
            until_due = self.scheduler.seconds_until_next(utcnow(), self.send_ahead)
            if until_due is not None:
                deadlines.append(until_due)
        else:
            deadlines.append(self.next_load - now_m)
        promotion = self.scheduler.ahead.next_promotion()
        if promotion is not None:
            deadlines.append(promotion / 1000 - time.time())
        if self.scheduler.withdrawals:
            deadlines.append(0.0)
        if self.scheduler.pending:
            deadlines.append(self.next_flush - now_m)
        return max(0.0, min(deadlines))

    # -- waiting for time or change ------------------------------------------------

    def _subscribe(self) -> Any:
        if self.pubsub is None:
            pubsub = new_client().pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            pubsub.subscribe(version.channel(), lease_channel())
            self.pubsub = pubsub
            if self.resubscribing and self.loaded:
                self.changes.append(version.ALL)  # notices may have been missed meanwhile
            self.resubscribing = True
        return self.pubsub

    def _drop_pubsub(self) -> None:
        if self.pubsub is not None:
            try:
                self.pubsub.close()
            except Exception:
                pass
            self.pubsub = None

    def _wait(self, stop: threading.Event, timeout: float) -> None:
        """Block on pub/sub until a message arrives or ``timeout`` passes."""
        if stop.is_set():
            return
        pubsub = self._subscribe()
        message = pubsub.get_message(timeout=min(timeout, MAX_WAIT))
        while message is not None:
            self._on_message(message)
            message = pubsub.get_message(timeout=0)

    def _drain(self) -> None:
        """Take the notices that have already arrived, without waiting."""
        pubsub = self._subscribe()
        message = pubsub.get_message(timeout=0)
        while message is not None:
            self._on_message(message)
            message = pubsub.get_message(timeout=0)

    def _on_message(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        data = message.get("data")
        if isinstance(channel, bytes):
            channel = channel.decode(errors="replace")
        if isinstance(data, bytes):
            data = data.decode(errors="replace")  # whatever a client published
        if channel == version.channel() and isinstance(data, str):
            self.changes.append(data)

    # -- loading ---------------------------------------------------------------------

    def _read_versions(self) -> tuple[int, int | None]:
        redis_v = version.redis_version(self.client)
        db_v = guarded("read the schedule version", version.db_version)
        return redis_v, db_v

    def _load(self) -> None:
        """Sync settings and load every enabled periodic task (retried on failure)."""
        started = time.perf_counter()
        try:
            report = guarded("sync TASKQ_BEAT_SCHEDULE", self._sync)
            # Read after the sync (its own changes are not news), before the load
            # (a change made during the load shows up as a new version).
            versions = self._read_versions()
            fresh = guarded("load periodic tasks", store.load_entries)
        except DatabaseUnavailable as exc:
            delay = self.db_backoff.next()
            self.next_load = time.monotonic() + delay
            logger.warning("beat: cannot load periodic tasks (%s); retrying in %.1fs", exc, delay)
            return
        self.changes.clear()
        self.unexplained = None
        last_sent = dispatch.last_sent(self.client)
        changed = self.scheduler.replace_all(fresh, last_sent)
        self._forget_sent(set(last_sent) - set(self.scheduler.entries))
        self.versions = versions
        self.loaded = True
        self.next_poll = time.monotonic() + float(taskq_settings.BEAT_VERSION_POLL_SECONDS)
        if self.db_backoff.reset():
            logger.info("beat: the database is reachable again")
        logger.info(
            "beat: loaded %d periodic tasks (%d computed, %s settings entries synced) in %.3fs",
            len(self.scheduler),
            changed,
            len(report.created) + len(report.updated),
            time.perf_counter() - started,
        )

    def _sync(self) -> Any:
        from django_taskq.beat.sync import sync

        return sync()

    def _forget_sent(self, ids: set[int]) -> None:
        if ids:
            self.client.hdel(dispatch.last_key(), *[str(i) for i in ids])

    def _apply_changes(self) -> None:
        """Reload just the rows named in change notices (all rows for ``*``)."""
        changes, self.changes = self.changes, []
        parsed = [version.parse(change) for change in changes]
        if any(kind == version.ALL for kind, _, _ in parsed):
            self._reload_all()
            return
        ids: set[int] = set()
        try:
            for kind, pk, _ in parsed:
                if kind == "task":
                    ids.add(int(pk))
                else:
                    ids.update(
                        guarded("find tasks of a schedule", partial(store.ids_using, kind, int(pk)))
                    )
            redis_now = version.redis_version(self.client)
            fresh = guarded("reload periodic tasks", lambda: store.load_entries(ids))
        except DatabaseUnavailable as exc:
            self.changes = changes + self.changes
            logger.warning("beat: cannot reload changed periodic tasks (%s); will retry", exc)
            self.next_poll = time.monotonic() + self.db_backoff.next()
            return
        last_sent = dispatch.last_sent(self.client, sorted(ids))
        for entry in fresh:
            self.scheduler.upsert(entry, last_sent.get(entry.id))
        for gone in ids - {e.id for e in fresh}:
            self.scheduler.remove(gone)
        self._advance_baseline(redis_now, [db for _, _, db in parsed])
        logger.info("beat: applied changes to %d periodic task(s)", len(ids))

    def _advance_baseline(self, redis_now: int, db_versions: list[int | None]) -> None:
        """Count the notices' own version bumps as seen, so the poll reloads only for others.

        Each saved or deleted row moves the database counter by exactly one,
        so if N notices took it from the baseline to exactly baseline + N,
        nothing else changed; otherwise the baseline stays and the next poll
        reloads everything.
        """
        if self.versions is None:
            return
        db_base = self.versions[1]
        known = [v for v in db_versions if v is not None]
        complete = bool(known) and len(known) == len(db_versions)
        if db_base is not None and complete and max(known) == db_base + len(known):
            db_base = max(known)
        self.versions = (redis_now, db_base)

    def _reload_all(self) -> None:
        started = time.perf_counter()
        try:
            versions = self._read_versions()
            fresh = guarded("reload periodic tasks", store.load_entries)
        except DatabaseUnavailable as exc:
            self.changes.append(version.ALL)
            logger.warning("beat: cannot reload periodic tasks (%s); will retry", exc)
            self.next_poll = time.monotonic() + self.db_backoff.next()
            return
        changed = self.scheduler.replace_all(fresh, dispatch.last_sent(self.client))
        self.versions = versions
        logger.info(
            "beat: reloaded %d periodic tasks (%d changed) in %.3fs",
            len(self.scheduler),
            changed,
            time.perf_counter() - started,
        )

    def _poll_versions(self) -> None:
        """The cheap catch-all: two counters, one in Redis and one row in the database.

        An ORM save moves the database counter when it commits and publishes
        its notice a moment later, so a poll can see the counter before the
        notice. A change is acted on only when no notice explains it: first
        the notices that have arrived are applied (they advance the
        baseline); a change still unexplained is checked again after
        NOTICE_GRACE, and only one unexplained twice in a row (raw SQL, a
        restore, a notice lost) makes the leader reload everything.
        """
        poll = float(taskq_settings.BEAT_VERSION_POLL_SECONDS)
        self.next_poll = time.monotonic() + poll
        try:
            versions = self._read_versions()
        except DatabaseUnavailable as exc:
            logger.warning("beat: cannot poll the schedule version (%s)", exc)
            return
        if versions != self.versions:
            self._drain()
            if self.changes:
                self._apply_changes()
        if versions == self.versions:
            self.unexplained = None
            logger.debug("beat: schedule version %s unchanged", versions)
            return
        if self.unexplained is None:
            self.unexplained = versions
            self.next_poll = time.monotonic() + min(poll, NOTICE_GRACE)
            return
        logger.info("beat: schedule version changed %s -> %s", self.versions, versions)
        self.unexplained = None
        self._reload_all()

    # -- dispatching -----------------------------------------------------------------

    def _dispatch_due(self) -> None:
        # A small first batch gets the earliest runs out at once; a burst of
        # thousands then goes in batches of 500 (one round trip each). Runs
        # due within send_ahead seconds are sent too, queued until due.
        limit = 50
        started = time.perf_counter()
        sent = ahead = overtaken = 0
        try:
            while self.loaded:
                popped_at = utcnow()
                runs = self.scheduler.pop_due(popped_at, limit=limit, ahead=self.send_ahead)
                limit = 500
                if not runs:
                    return
                if not self.lease.held():
                    self.scheduler.unsent(runs)
                    self.next_renew = 0.0
                    return
                try:
                    outcomes = dispatch.send_runs(runs, self.client)
                except redis.RedisError:
                    self.scheduler.unsent(runs)
                    raise
                self.scheduler.sent(outcomes)
                # A run found sent already whose due time has passed may be one
                # a previous leader queued ahead and did not live to promote.
                stale = {o.queue for o in outcomes if o.duplicate and not o.ahead and o.queue}
                if stale:
                    sendahead.promote_queues(self.client, stale)
                for outcome in outcomes:
                    if outcome.error is None and not outcome.ahead and outcome.run.due > popped_at:
                        overtaken += 1  # meant to go ahead, but its due time came first
                    if outcome.sent:
                        sent += 1
                        ahead += outcome.ahead
                        logger.debug(
                            "sent %s (%s) due %s as %s%s",
                            outcome.run.options.name,
                            outcome.run.options.task,
                            outcome.run.due.isoformat(),
                            outcome.task_id,
                            " (ahead)" if outcome.ahead else "",
                        )
                # Sending a large burst ahead takes a while: runs sent ahead
                # earlier may come due meanwhile.
                self._promote_ahead()
        finally:
            if sent >= BURST_LOG:
                logger.info(
                    "beat: sent %d runs (%d ahead of their due time) in %.3fs",
                    sent,
                    ahead,
                    time.perf_counter() - started,
                )
            if overtaken:
                logger.warning(
                    "beat: %d run(s) came due before they could be sent ahead, so they were "
                    "late; raise TASKQ_BEAT_SEND_AHEAD (now %gs) above the time this burst "
                    "took to send (%.1fs)",
                    overtaken,
                    self.send_ahead,
                    time.perf_counter() - started,
                )

    # -- runs sent ahead ---------------------------------------------------------------

    def _promote_ahead(self) -> None:
        """At the due time of runs sent ahead, promote their queues (workers may beat us to it)."""
        queues = self.scheduler.ahead.queues_due(int(time.time() * 1000))
        if not queues:
            return
        left = sendahead.promote_queues(self.client, queues)
        if left:
            logger.debug("beat: left the rest of a large due backlog in %s to workers", left)

    def _confirm_ahead(self) -> None:
        """Count runs sent ahead whose due time has come as sent (write-back, beat:last)."""
        runs = self.scheduler.ahead.take_due(int(time.time() * 1000))
        if runs:
            self.scheduler.confirm(runs)
            sendahead.record_sent(self.client, runs)

    def _withdraw_changed(self) -> None:
        """Take back runs sent ahead for periodic tasks that changed; before any send."""
        runs = list(self.scheduler.withdrawals)
        if not runs:
            return
        results = sendahead.withdraw(self.client, runs)  # a Redis error keeps them for the retry
        del self.scheduler.withdrawals[: len(runs)]
        self.scheduler.withdrawn(runs, results)

    def _flush(self, force: bool = False) -> None:
        if not self.scheduler.pending:
            return
        now_m = time.monotonic()
        if not force and now_m < self.next_flush:
            return
        pending = self.scheduler.take_pending()
        try:
            guarded("write last_run_at", lambda: store.write_back(pending))
        except DatabaseUnavailable as exc:
            self.scheduler.restore_pending(pending)
            delay = self.db_backoff.next()
            self.next_flush = now_m + delay
            logger.warning(
                "beat: cannot write run times of %d periodic task(s) (%s); retrying in %.1fs",
                len(pending),
                exc,
                delay,
            )
            return
        self.next_flush = now_m + FLUSH_EVERY

    # -- shutdown -----------------------------------------------------------------------

    def _shutdown(self) -> None:
        if self.leading:
            try:
                self._flush(force=True)
            except Exception:
                logger.exception("beat: could not write run times on shutdown")
            try:
                self.lease.release()
                logger.info("beat %s released the leader lease", self.hostname)
            except redis.RedisError as exc:
                logger.warning("beat: could not release the lease (%s); it expires by itself", exc)
        self._drop_pubsub()
        try:
            from django.db import connection

            connection.close()
        except Exception:
            pass
        logger.info("beat %s stopped", self.hostname)
