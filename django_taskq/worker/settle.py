"""The one step that ends every task: store the result, send the follow-ups, ack.

Success, failure, retry, revoke, expiry, a time-limit kill, terminate, a
message that kept killing its worker, and an entry that cannot be read all
end here (DESIGN 13). The parts run in this order, and each is idempotent:

1. the result record (store_result.lua, forward only: a final state already
   stored is kept, and the rest of this step acts on the kept outcome, so a
   task re-run after a crash converges on what the first run reported);
2. the follow-ups (link callbacks, the next chain step, chord counting; each
   follow-up published with a once key, each chord part counted once by
   index);
3. a message that goes on (a retry, a requeue) is published with a once key;
4. the ack (XACK + XDEL), or the move to the dead letters with the reason
   (dead_letter.lua: add and ack in one step).

A crash anywhere before 4 leaves the message pending, so it is delivered
again and ends the same way; nothing is lost and no workflow stalls.
Messages without follow-ups (the hot path) queue their writes here and are
flushed together, results before acks, within a few milliseconds.

The same flush carries what history and metrics need (DESIGN 16, 17): per
queue, one settle.lua call holds the acks, the final event of every message
it settles (events.py; split every 128 events) and the batch's counts and
histograms (metrics/counters.py; broker/queue_flush.py). A flush
that is sent again after a lost connection writes them again: the
recorder's upserts are idempotent, and the counters may count a few
settles twice after a failure, never lose them.

A unique task's key (broker/unique.py) is given up after its ack, in the
same flush, or kept longer for its retry: a crash before the flush leaves
the key to the redelivered message, which still owns it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis

from django_taskq import attempts, codecs, events, states
from django_taskq.broker import keys, queue_flush, results, topology, unique
from django_taskq.broker.connection import backend_is_broker, get_backend, get_broker
from django_taskq.broker.publish import queue_publish, run_pipeline
from django_taskq.broker.queue_flush import queue_settle
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import BrokerUnavailable
from django_taskq.followups import after_finish, needs_after_finish
from django_taskq.messages import Envelope
from django_taskq.metrics import counters
from django_taskq.safe_text import encodable
from django_taskq.trace import Outcome, result_record
from django_taskq.worker import streams as ops

if TYPE_CHECKING:
    from django_taskq.worker.flusher import Flusher

logger = logging.getLogger("django_taskq.worker")


@dataclass
class Writes:
    """What waits for the next flush: results, messages to publish, dead letters, acks."""

    #: id, record, state (and a Django task's attempt entry: attempts.py)
    records: list[results.Item] = field(default_factory=list)
    # envelope, body, once key
    publish: list[tuple[Envelope, str | bytes, str | None]] = field(default_factory=list)
    dead: list[tuple[ops.Delivery, str]] = field(default_factory=list)
    acks: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    #: queue -> events of this flush (each its JSON text), in the order they happened
    events: dict[str, list[str]] = field(default_factory=dict)
    counts: counters.Batch = field(default_factory=counters.Batch)
    #: unique keys to give up or keep (broker/unique.py), after the acks
    releases: list[tuple[str, str, int]] = field(default_factory=list)
    count: int = 0
    since: float = 0.0  # time.monotonic() of the oldest write

    def __bool__(self) -> bool:
        return self.count > 0

    def touch(self) -> None:
        if not self.count:
            self.since = time.monotonic()
        self.count += 1

    def merge_older(self, older: Writes) -> None:
        """Put ``older`` (a flush that failed) in front of what was queued since."""
        self.records[:0] = older.records
        self.publish[:0] = older.publish
        self.dead[:0] = older.dead
        self.releases[:0] = older.releases
        for stream, ids in older.acks.items():
            self.acks[stream][:0] = ids
        for queue, found in older.events.items():
            self.events.setdefault(queue, [])[:0] = found
        older.counts.merge(self.counts)
        self.counts = older.counts
        self.since = older.since if older.count else self.since
        self.count += older.count


def outcome_of_record(record: dict[str, Any]) -> Outcome:
    """The outcome a stored final record stands for (to act on the state that was kept)."""
    from django_taskq.result import rebuild_exception

    state = str(record.get("status"))
    if state == states.SUCCESS:
        return Outcome(states.SUCCESS, value=record.get("result"))
    exc = rebuild_exception(record.get("result"))
    return Outcome(
        state if state in states.READY_STATES else states.FAILURE,
        exception=exc,
        traceback=record.get("traceback"),
        reject_reason=record.get("reason"),
    )


def ending(outcome: Outcome, dead: str | None, expired: bool) -> tuple[str, str]:
    """The event kind and the counter of a message that ends with ``outcome``."""
    if dead is not None:
        return events.DEAD, counters.REJECTED
    state = outcome.state
    if state == states.SUCCESS:
        return events.SUCCEEDED, counters.SUCCEEDED
    if state == states.RETRY:
        return events.RETRIED, counters.RETRIED
    if state == states.REVOKED:
        return (events.EXPIRED if expired else events.REVOKED), counters.REVOKED
    return events.FAILED, counters.FAILED


#: The start of a final event of each kind, up to its id (final_event()).
_HEADS = {kind: f'{{"k":"{kind}","id":' for kind in events.FINAL | {events.RETRIED}}
#: Its fixed fields (%d truncates a float as int() does), with and without a run.
_TIMED = '%s%s,"n":%s,"ts":%d,"rcv":%d,"dc":%d,"st":%d,"rt":%d'
_UNTIMED = '%s%s,"n":%s,"ts":%d,"rcv":%d,"dc":%d'
#: The whole event of a first-try success outside a group: the common case, one format.
_SUCCEEDED = (
    _HEADS[events.SUCCEEDED] + '%s,"n":%s,"ts":%d,"rcv":%d,"dc":%d,"st":%d,"rt":%d,"res":%s}'
)
_quote = events.quote
#: Task name -> its JSON string: a worker runs few names, each many times.
_QUOTED_NAMES: dict[str, str] = {}
#: Names kept at most (a worker sees only its registered names, and a few bad ones).
_QUOTED_NAMES_MAX = 4096


def _quoted_name(name: str) -> str:
    quoted = _QUOTED_NAMES.get(name)
    if quoted is None:
        quoted = events.quote(str(name))
        if len(_QUOTED_NAMES) < _QUOTED_NAMES_MAX:
            _QUOTED_NAMES[name] = quoted
    return quoted


def final_event(
    kind: str,
    delivery: ops.Delivery,
    envelope: Envelope,
    outcome: Outcome,
    *,
    now: float,
    started: float | None,
    deliveries: int,
    reason: str | None,
    republish: Envelope | None,
    repr_limit: int | None = None,
) -> str:
    """The event that ends a message (what, when, its timings, and why), as JSON text.

    Built as text by one format, not as a dict to encode later: it is
    written for every task a worker ends (docs/benchmarks.md). The common
    case, a first-try success outside a group, is ``succeeded_event()``.
    """
    quote = events.quote
    head = _HEADS.get(kind) or f'{{"k":{quote(kind)},"id":'
    if started is not None:
        text = _TIMED % (
            head,
            quote(str(envelope.id)),
            _quoted_name(envelope.task),
            now * 1000,
            delivery.received * 1000,
            deliveries,
            started * 1000,
            outcome.runtime * 1_000_000,
        )
    else:
        text = _UNTIMED % (
            head,
            quote(str(envelope.id)),
            _quoted_name(envelope.task),
            now * 1000,
            delivery.received * 1000,
            deliveries,
        )
    if envelope.retries:
        text += f',"rty":{int(envelope.retries)}'
    if envelope.group_id:
        text += ',"grp":' + quote(str(envelope.group_id))
    if kind == events.SUCCEEDED:
        return text + ',"res":' + quote(events.short_repr(outcome.value, repr_limit)) + "}"
    extra: dict[str, Any] = {}
    if kind in (events.FAILED, events.RETRIED, events.DEAD):
        extra.update(events.exception_fields(outcome.exception, outcome.traceback))
        if kind == events.RETRIED and republish is not None and republish.eta is not None:
            extra["eta"] = republish.eta
    if kind in (events.REVOKED, events.EXPIRED, events.DEAD):
        message = reason or outcome.reject_reason
        if message:
            extra["msg"] = message
    if extra:
        text += "," + events.encode([extra])[2:-2]
    return text + "}"


def succeeded_event(
    delivery: ops.Delivery,
    envelope: Envelope,
    outcome: Outcome,
    started: float,
    deliveries: int,
    repr_limit: int,
) -> str | None:
    """The whole event of a first-try success outside a group, in one format; else None.

    The common case of every worker, so it is one format with positional
    arguments; what it returns is the event ``final_event()`` would build
    (tests/events/test_final_event.py). The task's name is quoted once per
    name, not once per task.
    """
    if envelope.retries or envelope.group_id:
        return None
    return _SUCCEEDED % (
        _quote(envelope.id),
        _QUOTED_NAMES.get(envelope.task) or _quoted_name(envelope.task),
        time.time() * 1000,
        delivery.received * 1000,
        deliveries,
        started * 1000,
        outcome.runtime * 1_000_000,
        _quote(events.short_repr(outcome.value, repr_limit)),
    )


class Settler:
    """Ends messages for one consumer; its flush may run from the consumer's guard thread."""

    def __init__(self, hostname: str) -> None:
        self.hostname = hostname
        # Read once: a worker's settings do not change while it runs.
        self.events = bool(taskq_settings.EVENTS)
        self.metrics = bool(taskq_settings.METRICS)
        self.repr_limit = int(taskq_settings.HISTORY_REPR_LIMIT)
        self.result_compression: str | None = taskq_settings.RESULT_COMPRESSION or None
        self.writes = Writes()
        self.lock = threading.Lock()  # guards self.writes
        self.flushing = threading.Lock()  # one flush at a time, in order
        #: The thread that flushes for every consumer (the threads pool), or None.
        self.background: Flusher | None = None

    # -- ending one message ----------------------------------------------------
    def finish(
        self,
        delivery: ops.Delivery,
        envelope: Envelope,
        outcome: Outcome,
        *,
        dead: str | None = None,
        republish: Envelope | None = None,
        once: str | None = None,
        result_compression: str | None = None,
        acked: bool = False,
        started: float | None = None,
        deliveries: int = 1,
        expired: bool = False,
    ) -> Outcome:
        """End ``delivery`` with ``outcome``; returns the outcome that stands.

        ``dead``: dead-letter the message with this reason instead of acking.
        ``republish``: a message that continues this one (a retry, a
        requeue), published with the once key ``once`` before the ack.
        ``result_compression``: the task's own (else TASKQ_RESULT_COMPRESSION).
        ``acked``: the message was acked on receipt (``acks_late=False``).
        ``started``: when the run began (epoch seconds; None if it did not
        run), ``deliveries`` its delivery count and ``expired`` whether a
        revoke was its expiry: they go into its event and counters.
        Raises Redis errors only for the synchronous part (a message with
        follow-ups); the caller retries the whole call, which is idempotent.
        """
        record = (
            None
            if envelope.ignore_result
            else result_record(
                envelope, outcome, self.hostname, result_compression or self.result_compression
            )
        )
        # A Django task's record carries its attempt (tasks without headers pay this check only).
        attempt = (
            attempts.of(envelope, outcome, outcome.state, self.hostname)
            if record is not None and envelope.headers
            else None
        )
        follow = outcome.state != states.RETRY and needs_after_finish(envelope)
        if follow:
            if record is not None:
                kept = results.store(envelope.id, record, outcome.state, attempt=attempt)
                if kept is not None and results.is_final(str(kept.get("status"))):
                    outcome = outcome_of_record(kept)
                record = None  # stored already
            try:
                after_finish(envelope, outcome)
            except (redis.ConnectionError, redis.TimeoutError, OSError, BrokerUnavailable):
                raise  # settled again after the reconnect (every part is idempotent)
            except Exception:
                # A follow-up that cannot be sent (its data is wrong) must not
                # make the task run again and again: the result stands.
                logger.exception("the follow-ups of task %s[%s] failed", envelope.task, envelope.id)
        # A retry or a replacement is sent with its task's own serializer and compression.
        body = republish.encode(*codecs.choose(republish.task)) if republish is not None else None
        release = None
        if envelope.headers:  # tasks without headers (most) pay this check only
            release = unique.release_of(envelope, outcome.state, republish)
        # Task events and counters (DESIGN 16, 17), for every task a worker
        # ends: the common success takes the short way (succeeded_event()).
        event = None
        metric = None
        if self.events or self.metrics:
            if dead is None and outcome.state == states.SUCCESS:
                kind, metric = events.SUCCEEDED, counters.SUCCEEDED
                if self.events and started is not None:
                    event = succeeded_event(
                        delivery, envelope, outcome, started, deliveries, self.repr_limit
                    )
            else:
                kind, metric = ending(outcome, dead, expired)
            if self.events and event is None:
                event = final_event(
                    kind,
                    delivery,
                    envelope,
                    outcome,
                    now=time.time(),
                    started=started,
                    deliveries=deliveries,
                    reason=dead,
                    republish=republish,
                    repr_limit=self.repr_limit,
                )
        queue = delivery.queue
        with self.lock:
            w = self.writes
            if event is not None:
                found = w.events.get(queue)
                if found is None:
                    w.events[queue] = [event]
                else:
                    found.append(event)
            if self.metrics:
                if started is None:
                    w.counts.task_ended(queue, envelope.task, self.hostname, metric, None, None)
                else:
                    since = envelope.sent_at
                    eta = envelope.eta
                    if eta is not None and eta > since:
                        since = eta
                    w.counts.task_ended(
                        queue,
                        envelope.task,
                        self.hostname,
                        metric,
                        outcome.runtime,
                        started - since if started > since else 0.0,
                    )
            if attempt is not None and record is not None:
                w.records.append((envelope.id, record, outcome.state, attempt))
            elif record is not None:
                w.records.append((envelope.id, record, outcome.state))
            if republish is not None and body is not None:
                w.publish.append((republish, body, once))
            if dead is not None and not acked:
                w.dead.append((delivery, dead))
            elif not acked:
                w.acks[delivery.stream].append(delivery.entry_id)
            if release is not None:
                w.releases.append(release)
            w.touch()
        return outcome

    def pass_on(self, delivery: ops.Delivery, envelope: Envelope, once: str) -> None:
        """Publish ``envelope`` in place of ``delivery`` and ack it, with no result.

        For a message that goes back to its queue unchanged (Reject with
        requeue) or later (over its rate limit).
        """
        body = envelope.encode(*codecs.choose(envelope.task))
        with self.lock:
            self.writes.publish.append((envelope, body, once))
            self.writes.acks[delivery.stream].append(delivery.entry_id)
            self.writes.touch()

    def bad_entry(self, delivery: ops.Delivery, reason: str, task_id: str | None) -> None:
        """Dead-letter an entry that cannot be read; its task's result says why.

        Its ``dead`` event is written when its task id is known; it is
        counted as rejected under its task's name if the body names one,
        else under "<unknown>".
        """
        from django_taskq.exceptions import DecodeError

        name = _task_name_of(delivery)
        queue = delivery.queue
        with self.lock:
            w = self.writes
            if self.events and task_id:
                event = {
                    "k": events.DEAD,
                    "id": task_id,
                    "n": name,
                    "ts": int(time.time() * 1000),
                    "rcv": int(delivery.received * 1000),
                    "msg": reason,
                    "exc": "django_taskq.exceptions.DecodeError",
                }
                w.events.setdefault(queue, []).append(events.encode_one(event))
            if self.metrics:
                w.counts.task_ended(queue, name, self.hostname, counters.REJECTED, None, None)
            if task_id:
                stub = Envelope(id=task_id, task="?")
                failure = Outcome(
                    states.FAILURE, exception=DecodeError(reason), reject_reason=reason
                )
                w.records.append(
                    (task_id, result_record(stub, failure, self.hostname), states.FAILURE)
                )
            w.dead.append((delivery, reason))
            w.touch()

    def started(
        self,
        delivery: ops.Delivery,
        envelope: Envelope,
        started: float,
        deliveries: int,
        *,
        record: bool = False,
    ) -> None:
        """Queue the ``started`` event of a running task, and with ``record`` its STARTED record.

        For ``track_started`` (the consumer flushes at once), or a task that
        runs long (the guard flushes it while the task runs).
        """
        if record:
            stored = result_record(envelope, Outcome(states.STARTED), self.hostname)
            attempt = attempts.of(envelope, None, states.STARTED, self.hostname)
            with self.lock:
                self.writes.records.append((envelope.id, stored, states.STARTED, attempt))
                self.writes.touch()
        if not self.events:
            return
        event = {
            "k": events.STARTED,
            "id": envelope.id,
            "n": envelope.task,
            "ts": int(time.time() * 1000),
            "rcv": int(delivery.received * 1000),
            "st": int(started * 1000),
            "dc": deliveries,
        }
        if envelope.retries:
            event["rty"] = envelope.retries
        with self.lock:
            self.writes.events.setdefault(delivery.queue, []).append(events.encode_one(event))
            self.writes.touch()

    def ack(self, delivery: ops.Delivery) -> None:
        """Ack without a result (acks_late=False acks on receipt; the task ends later)."""
        with self.lock:
            self.writes.acks[delivery.stream].append(delivery.entry_id)
            self.writes.touch()

    def record(self, envelope: Envelope, outcome: Outcome) -> None:
        """Queue a result without touching the message (after an early ack)."""
        if envelope.ignore_result:
            return
        stored = result_record(envelope, outcome, self.hostname)
        attempt = attempts.of(envelope, outcome, outcome.state, self.hostname)
        with self.lock:
            self.writes.records.append((envelope.id, stored, outcome.state, attempt))
            self.writes.touch()

    # -- flushing --------------------------------------------------------------
    def pending(self) -> bool:
        return bool(self.writes)

    def age(self) -> float:
        """Seconds since the oldest unflushed write (0 when there is none)."""
        w = self.writes
        return time.monotonic() - w.since if w else 0.0

    def flush_soon(self) -> None:
        """Flush now, or have the background flusher do it and return at once.

        For a consumer that only wants its writes on their way (the end of a
        batch); what must be in Redis before it goes on calls ``flush()``.
        """
        background = self.background
        if background is None:
            self.flush()
        else:
            background.nudge()

    def flush(self) -> None:
        """Write everything queued: results first, then publishes, dead letters, acks.

        One round trip when results live on the broker. If Redis fails,
        nothing is dropped: the writes go back in front of newer ones and
        the next flush sends them again (every part is idempotent).
        """
        with self.flushing:
            with self.lock:
                w, self.writes = self.writes, Writes()
            if not w:
                return
            try:
                _write(w, self.hostname)
            except BaseException:
                with self.lock:
                    self.writes.merge_older(w)
                raise


def _task_name_of(delivery: ops.Delivery) -> str:
    """The task name an unreadable entry's body gives, if any (for its counter and event).

    A msgpack or compressed body this worker refused is read for its name
    alone (never a pickled one: that would run it), inflated to 1 MiB at most.
    """
    import json

    body = delivery.fields.get(b"b", b"")
    try:
        if codecs.header_of(body) is None:
            data = json.loads(body)
        else:
            data = codecs.decode_body(body, codecs.SAFE, limit=1 << 20)
    except Exception:  # whatever the bytes are: the name is only for a counter
        return UNKNOWN
    name = data.get("task") if isinstance(data, dict) else None
    if not isinstance(name, str) or not 0 < len(name) <= 255:
        return UNKNOWN
    # A counter's field is name parts joined by tabs, written as UTF-8.
    return encodable(name).replace(counters.SEP, " ")


#: The task name of a dead letter whose body names none.
UNKNOWN = "<unknown>"


def _write(w: Writes, worker: str) -> None:
    broker = get_broker()
    same = backend_is_broker()
    if w.records and not same:
        backend = get_backend()
        for reply in run_pipeline(
            backend,
            lambda pipe: results.queue_store_many(pipe, backend, w.records),
            raise_on_error=False,
        ):
            if isinstance(reply, Exception):
                logger.error("the result Redis refused a write of a worker flush: %s", reply)

    # Per queue, one settle.lua call holds the acks, the counters and the
    # events (broker/queue_flush.py), after the results (and on Cluster a
    # barrier): a message is never acked before its result is stored. A
    # flush that publishes (a retry, a requeue) writes its counters and
    # events before the publishes instead, so that a retry's ``retried``
    # precedes its ``sent``, and acks after them, so that nothing is acked
    # before what continues it exists.
    counts = w.counts.increments() if w.counts else {}
    endings = w.counts.endings() if w.counts else {}
    entries = {queue: events.text_entries(found) for queue, found in w.events.items()}
    acks: dict[str, dict[str, list[str]]] = {}
    for stream, ids in w.acks.items():
        if ids:
            acks.setdefault(keys.queue_of(stream)[0], {})[stream] = ids
    cap = events.maxlen()
    settles: list[int] = []  # positions of the settle.lua calls among the replies

    def settle(pipe: Any, queues: Iterable[str], *, with_acks: bool, telemetry: bool) -> None:
        for queue in queues:
            settles.append(len(pipe))
            queue_settle(
                pipe,
                broker,
                queue,
                acks=acks.get(queue) if with_acks else None,
                counters=counts.get(queue, ()) if telemetry else (),
                endings=endings.get(queue, ()) if telemetry else (),
                entries=entries.get(queue, ()) if telemetry else (),
                worker=worker,
                maxlen=cap,
            )

    told = list(dict.fromkeys([*counts, *entries]))

    def build(pipe: Any) -> None:
        settles.clear()
        if same:
            results.queue_store_many(pipe, broker, w.records)
        if w.publish:
            settle(pipe, told, with_acks=False, telemetry=True)
            for envelope, body, once in w.publish:
                queue_publish(pipe, broker, envelope, body, once=once)
        topology.barrier(pipe)  # Cluster: results and follow-ups are in before the acks
        for delivery, reason in w.dead:
            ops.queue_dead_letter(pipe, broker, delivery, reason)
        if w.publish:
            settle(pipe, acks, with_acks=True, telemetry=False)
        else:
            settle(pipe, dict.fromkeys([*acks, *told]), with_acks=True, telemetry=True)
        for release in w.releases:
            unique.queue_release(pipe, broker, release)

    # A write Redis refuses (a record over its size limit, say) would be
    # refused again at every retry: it is logged and dropped, never retried
    # forever. Each part is idempotent, so what it leaves undone (an ack)
    # ends in a redelivery, not a loss.
    replies = run_pipeline(broker, build, raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception):
            logger.error("Redis refused a write of a worker flush: %s", reply)
    for position in settles:
        for error in queue_flush.errors(replies[position]):
            logger.error("Redis refused the counters or events of a worker flush: %s", error)
    if w.publish and not same:
        from django_taskq.broker.publish import _record_pending_elsewhere

        _record_pending_elsewhere([e for e, _, _ in w.publish])
    if w.dead:
        logger.debug("dead-lettered %d message(s)", len(w.dead))


__all__ = ["Settler", "Writes", "outcome_of_record"]
