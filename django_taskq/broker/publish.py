"""Publish messages: ready now into a stream, or later into the delayed set.

``publish()`` is the single way a message enters Redis, for ``delay()``,
retries, beat and workflows. Enqueueing many messages at once goes through
``publish_many()``, one pipelined round trip.

Every publish carries a once key in its queue's slot (enqueue.lua sets it
in the same step), so a publish that is retried after a timeout, or sent
again by a task re-run after a crash, queues the message once. The PENDING
result record is written after the message with SET NX: it never overwrites
a state a fast worker already stored, and it lives in the task's own slot.
"""

from __future__ import annotations

import functools
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import Any, TypeVar

import redis

from django_taskq import codecs, events, states
from django_taskq.broker import durability, keys, scripts, topology
from django_taskq.broker.connection import backend_is_broker, get_backend, get_broker
from django_taskq.broker.deadline import deadline, tracking
from django_taskq.broker.errors import unavailable
from django_taskq.conf import taskq_settings
from django_taskq.messages import Envelope, dumps
from django_taskq.metrics import counters

logger = logging.getLogger("django_taskq.publish")

T = TypeVar("T")


def with_publish_retry(what: str, func: Callable[[], T], *, task_ids: Sequence[str] = ()) -> T:
    """Run ``func``; on a connection error retry per TASKQ_PUBLISH_RETRY.

    The whole call, retries and their waits included, ends within
    TASKQ_PUBLISH_TIMEOUT (or sooner, inside an enclosing publish_deadline()):
    every connect, write and read of an attempt is cut to the time left, and
    no retry starts once it is spent. Then BrokerUnavailable is raised,
    carrying ``task_ids`` and whether an attempt may have reached Redis.
    """
    started = time.monotonic()
    attempts = 0
    with publish_deadline() as end, tracking() as progress:
        while True:
            try:
                return func()
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                if not attempts:  # read only when needed: most sends never fail
                    policy = taskq_settings.PUBLISH_RETRY or {}
                    max_retries = int(policy.get("max_retries", 3))
                    interval = float(policy.get("interval_start", 0.1))
                    step = float(policy.get("interval_step", 0.2))
                    interval_max = float(policy.get("interval_max", 1.0))
                attempts += 1
                # Retry only if the wait still leaves time for an attempt.
                if attempts > max_retries or end - time.monotonic() <= interval:
                    raise unavailable(
                        what,
                        exc,
                        attempts=attempts,
                        elapsed=time.monotonic() - started,
                        task_ids=task_ids,
                        maybe_sent=progress.maybe_sent,
                        sending=True,
                    ) from exc
                logger.warning("%s failed (%s); retrying in %.2fs", what, exc, interval)
                time.sleep(interval)
                interval = min(interval + step, interval_max)


def publish_deadline() -> AbstractContextManager[float]:
    """A block within which every send must finish: TASKQ_PUBLISH_TIMEOUT from now.

    ``with_publish_retry`` opens one; a caller that makes more than one
    round trip for one call (the message, then PENDING records on a separate
    result Redis) opens it around all of them, so they share the bound.
    """
    return deadline(float(taskq_settings.PUBLISH_TIMEOUT))


def _pending_records_best_effort(
    write: Callable[[list[Envelope]], None],
) -> Callable[[list[Envelope]], None]:
    """Log, not raise, when PENDING records on a separate result Redis cannot be written.

    The messages are queued by then: raising would tell the caller that a
    task which will run was not sent. Within the caller's publish deadline.
    """

    @functools.wraps(write)
    def wrapper(envelopes: list[Envelope]) -> None:
        try:
            with publish_deadline():
                write(envelopes)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning(
                "%d task(s) were queued (%s), but their PENDING records could not be "
                "written to the result Redis (%s): exists() reads False for them until a "
                "worker stores a state. Check TASKQ_RESULT_BACKEND.",
                len(envelopes),
                ", ".join(e.id for e in envelopes[:3]) + (", ..." if len(envelopes) > 3 else ""),
                exc,
            )

    return wrapper


def pending_record(envelope: Envelope) -> str:
    """The PENDING result record of ``envelope``, as stored (JSON text).

    The same text for every top-level call of a task (no parent, no root,
    no Django task fields), so that one is made once per task name.
    """
    if envelope.parent_id is None and envelope.root_id is None and not envelope.headers:
        return _top_level_pending(envelope.task)
    return _pending_record(envelope)


@functools.lru_cache(maxsize=1024)
def _top_level_pending(task: str) -> str:
    return dumps(
        {
            "status": states.PENDING,
            "result": None,
            "traceback": None,
            "date_done": None,
            "task": task,
            "parent_id": None,
            "root_id": None,
        }
    )


def _pending_record(envelope: Envelope) -> str:
    record = {
        "status": states.PENDING,
        "result": None,
        "traceback": None,
        "date_done": None,
        "task": envelope.task,
        "parent_id": envelope.parent_id,
        "root_id": envelope.root_id,
    }
    if envelope.headers:
        from django_taskq.django_tasks import extended

        record.update(extended(envelope))  # a Django task's (django_tasks.py)
    return dumps(record)


def once_token(envelope: Envelope) -> str:
    """What makes one publish of ``envelope`` unique in its queue: its id and attempt.

    A replacement (``Task.replace()``) keeps the task id and starts its
    retries again, so its count of replacements (header ``replaced``) is
    part of the token too.
    """
    token = envelope.id if not envelope.retries else f"{envelope.id}:r{envelope.retries}"
    if envelope.headers and envelope.headers.get(REPLACED):
        token += f":x{envelope.headers[REPLACED]}"
    return token


#: Header counting how many times a task id was replaced (``Task.replace()``).
REPLACED = "replaced"


def default_once_ttl() -> float:
    """Seconds a plain publish's once key lives: it only has to outlast the publish's retries."""
    timeout = float(getattr(taskq_settings, "PUBLISH_TIMEOUT", 5.0) or 5.0)
    return max(10.0, 3 * timeout)


#: A due time this close above a whole millisecond is that millisecond (float error).
ETA_TOLERANCE_MS = 0.001

#: How often a client adds a queue it publishes to to the registry again
#: (so a Redis that lost its data has its queues back within this long).
REGISTER_EVERY = 5.0


def registration_due(client: redis.Redis, queue: str) -> bool:
    """True when this client has not added ``queue`` to the registry for REGISTER_EVERY seconds."""
    memo: dict[tuple[str, str], float] | None = getattr(client, "_taskq_registered", None)
    if not memo:
        return True
    return time.monotonic() - memo.get((keys.prefix(), queue), -REGISTER_EVERY) >= REGISTER_EVERY


def register_queue(pipe: Any, client: redis.Redis, queue: str) -> int:
    """Add ``queue`` to the queue registry (at most every REGISTER_EVERY seconds per client).

    Returns the number of commands queued (0 or 1). The registration is
    queued after the message, so a registry pruned meanwhile (a queue idle
    for long) gets the queue back; see broker/queues.py. What was registered
    when is remembered on the client, so a new client (after a settings
    change, in a forked child) registers again at once.
    """
    if not registration_due(client, queue):
        return 0
    memo: dict[tuple[str, str], float] | None = getattr(client, "_taskq_registered", None)
    if memo is None:
        memo = {}
        setattr(client, "_taskq_registered", memo)  # noqa: B010 - cache on the client
    topology.barrier(pipe)  # after the message on Cluster too (one round trip more, rarely)
    pipe.sadd(keys.queues(), queue)
    memo[(keys.prefix(), queue)] = time.monotonic()
    return 1


def pending_in_script(client: redis.Redis, envelope: Envelope) -> bool:
    """True when enqueue.lua writes ``envelope``'s PENDING record itself.

    It can when results live on the broker and the result key may sit
    beside the queue's keys: a single Redis or Sentinel, not a Cluster,
    where the record lives in the task's own slot.
    """
    return not envelope.ignore_result and backend_is_broker() and not topology.is_cluster(client)


def enqueue_call(
    client: redis.Redis,
    envelope: Envelope,
    body: str | bytes,
    *,
    once: str | None = None,
    once_ttl: float | None = None,
    unique: tuple[str, int] | None = None,
) -> tuple[list[Any], list[Any]]:
    """The keys and arguments of the enqueue.lua call that publishes ``envelope``.

    With ``pending_in_script()``, the call writes the PENDING record too
    (the result key goes last among the keys).
    """
    due_ms = 0
    if envelope.eta is not None and envelope.eta > time.time():
        # Rounded up, so a task never runs before its ETA; a float a hair
        # above a whole millisecond (beat's eta_of) stays on it.
        due_ms = math.ceil(envelope.eta * 1000 - ETA_TOLERANCE_MS)
    queue = envelope.queue
    ttl = default_once_ttl() if once_ttl is None else once_ttl
    settings = taskq_settings
    event = events.encode([events.sent_event(envelope, body)]) if settings.EVENTS else ""
    counter = counters.field(counters.SENT, envelope.task) if settings.METRICS else ""
    script_keys = [
        keys.stream(queue, envelope.priority),
        keys.delayed(queue),
        keys.once(queue, once or once_token(envelope)),
        keys.events(queue),
        keys.metrics(queue),
    ]
    args: list[Any] = [
        body,
        envelope.id,
        due_ms,
        int(ttl * 1000),
        envelope.priority,
        keys.delayed_wake(),
        queue,
        event,
        int(settings.EVENTS_MAXLEN),
        counter,
        "",
    ]
    if unique is not None:
        script_keys += (unique[0], keys.revoked(queue))
        args[10] = unique[1]
    if pending_in_script(client, envelope):
        script_keys.append(keys.result(envelope.id))
        args += (pending_record(envelope), _result_ttl(envelope))
    return script_keys, args


def queue_publish(
    pipe: Any,
    client: redis.Redis,
    envelope: Envelope,
    body: str | bytes,
    *,
    once: str | None = None,
    once_ttl: float | None = None,
    unique: tuple[str, int] | None = None,
) -> int:
    """Queue the commands that publish ``envelope`` on ``pipe`` (a broker pipeline).

    One EVALSHA of enqueue.lua in the queue's slot, which also writes the
    PENDING record when it can (``pending_in_script()``); else, when
    results live on the broker, the PENDING record with SET NX in the
    task's slot; then the queue registration when it is due. The same
    EVALSHA appends the ``sent`` event to the queue's events stream
    (TASKQ_EVENTS) and counts the publish (TASKQ_METRICS), for a message
    that was queued only. The caller executes the pipeline, with
    ``run_pipeline`` so a Redis that lost its scripts is handled. Returns
    how many commands were queued; the first one's reply is 1 when the
    message was queued, 0 when its once key said it was already.

    ``unique`` (a unique task: its unique key and the ms to keep it) makes
    the same EVALSHA check and set that key (broker/unique.py); its reply
    is then the owner's task id when another task holds the key.
    """
    script_keys, args = enqueue_call(
        client, envelope, body, once=once, once_ttl=once_ttl, unique=unique
    )
    scripts.queue_evalsha(pipe, client, "enqueue", script_keys, args)
    queued = 1
    if (
        not envelope.ignore_result
        and backend_is_broker()
        and not pending_in_script(client, envelope)
    ):
        pipe.set(
            keys.result(envelope.id), pending_record(envelope), px=_result_ttl(envelope), nx=True
        )
        queued += 1
    return queued + register_queue(pipe, client, envelope.queue)


def one_command(client: redis.Redis, envelope: Envelope) -> bool:
    """True when publishing ``envelope`` is the enqueue.lua call alone.

    So when its PENDING record is in the call or not wanted, the queue's
    registration is not due, and no replica acknowledgement is waited for
    (TASKQ_BROKER_MIN_REPLICAS): then ``publish()`` sends the call without
    a pipeline, which costs a producer a good part of its Python time.
    """
    return (
        (envelope.ignore_result or pending_in_script(client, envelope) or not backend_is_broker())
        and not registration_due(client, envelope.queue)
        and not durability.wanted()[0]
    )


def run_script(client: redis.Redis, name: str, script_keys: list[Any], args: list[Any]) -> Any:
    """One EVALSHA of ``name`` on ``client``; loads the script when Redis has lost it.

    What ``run_pipeline`` does for a pipeline, for a single call: a
    connection error forgets which queues were registered, as Redis may
    have restarted without its data.
    """
    sha = scripts.script(client, name).sha
    call = client.evalsha if topology.is_cluster(client) else functools.partial(_evalsha, client)
    try:
        try:
            return call(sha, len(script_keys), *script_keys, *args)
        except redis.exceptions.NoScriptError:
            scripts.load_all(client)
            return call(sha, len(script_keys), *script_keys, *args)
    except (redis.ConnectionError, redis.TimeoutError):
        setattr(client, "_taskq_registered", {})  # noqa: B010
        raise


def _evalsha(client: redis.Redis, *command: Any) -> Any:
    """``EVALSHA`` on a connection of ``client``'s pool, without redis-py's command wrapper.

    What ``execute_command`` adds around the send and the read (its retry
    loop, which is one try under a publish deadline anyway, and its
    per-command observability hooks) is a sixth of a ``delay()``'s own
    work; the caller's retry wrapper does the retrying. A connection that
    failed is disconnected before it goes back to the pool, as redis-py
    does, so the next user reconnects.
    """
    pool = client.connection_pool
    conn = pool.get_connection()
    try:
        conn.send_command("EVALSHA", *command)  # type: ignore[no-untyped-call]
        return conn.read_response()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        conn.disconnect()  # type: ignore[no-untyped-call]
        raise
    finally:
        pool.release(conn)


def run_pipeline(
    client: redis.Redis, build: Callable[[Any], object], *, raise_on_error: bool = True
) -> list[Any]:
    """Build a pipeline with ``build(pipe)`` and execute it; returns the replies.

    With TASKQ_BROKER_MIN_REPLICAS, the round trip also waits until that many
    replicas have the writes (broker/durability.py).

    Scripts are queued as bare EVALSHA (no SCRIPT EXISTS round trip). When
    Redis has lost them (a restart, SCRIPT FLUSH, a promoted replica), they
    are loaded (on every primary of a Cluster) and the whole pipeline is
    sent again, which is safe because everything that goes through here is
    idempotent: once keys, SET NX, forward-only result writes, acks. With
    ``raise_on_error=False`` a command Redis refuses comes back as an
    exception among the replies instead. Connection errors are raised
    either way, and on Cluster so is a part that did not reach its node (a
    failover, a slot on the move): the caller sends the whole pipeline
    again, as after a lost connection to one Redis.
    """
    try:
        try:
            replies = _execute(client, build, raise_on_error)
        except redis.exceptions.NoScriptError:
            scripts.load_all(client)
            replies = _execute(client, build, raise_on_error)
    except (redis.ConnectionError, redis.TimeoutError):
        # Redis may have restarted without its data: register queues again.
        setattr(client, "_taskq_registered", {})  # noqa: B010
        raise
    return replies


def _execute(
    client: redis.Redis, build: Callable[[Any], object], raise_on_error: bool
) -> list[Any]:
    pipe = client.pipeline(transaction=False)
    build(pipe)
    replicas, timeout_ms = durability.wanted()  # TASKQ_BROKER_MIN_REPLICAS, 0 by default
    waited = bool(replicas) and len(pipe) > 0 and durability.request(pipe, replicas, timeout_ms)
    replies: list[Any] = pipe.execute(raise_on_error=raise_on_error)
    if waited:
        durability.check(replies.pop(), replicas, timeout_ms)
    if not raise_on_error:
        for reply in replies:
            if isinstance(reply, redis.exceptions.NoScriptError):
                raise reply
    return replies


def publish(
    envelope: Envelope,
    *,
    once: str | None = None,
    once_ttl: float | None = None,
    pipe: Any = None,
    serializer: str | None = None,
    compression: str | None = None,
) -> bool:
    """Put one message on its queue (or in its delayed set if it has an ETA).

    ``once`` names the publish (default: the task id and attempt): a second
    publish of the same name into the same queue within ``once_ttl``
    seconds is dropped, and False is returned for it. With ``pipe``, the
    commands are queued on that broker pipeline and True is returned.
    """
    body = envelope.encode(*codecs.choose(envelope.task, serializer, compression))
    if pipe is not None:
        client = get_broker()
        queue_publish(pipe, client, envelope, body, once=once, once_ttl=once_ttl)
        _record_pending_elsewhere([envelope])
        return True

    def send() -> list[Any]:
        # The client inside the retried call: a Cluster client reads the slot
        # map when it is made, which fails while the cluster is unreachable.
        client = get_broker()
        if one_command(client, envelope):
            script_keys, args = enqueue_call(client, envelope, body, once=once, once_ttl=once_ttl)
            return [run_script(client, "enqueue", script_keys, args)]
        return run_pipeline(
            client,
            lambda p: queue_publish(p, client, envelope, body, once=once, once_ttl=once_ttl),
        )

    replies = with_publish_retry(f"send task {envelope.task}", send, task_ids=[envelope.id])
    if not backend_is_broker():  # else the PENDING record went in the same pipeline
        _record_pending_elsewhere([envelope])
    return bool(replies[0])


def publish_many(envelopes: Iterable[Envelope]) -> int:
    """Publish many messages in one pipelined round trip; returns how many were queued.

    The messages of one queue go in one ``enqueue_many.lua`` call per
    ``topology.BATCH`` of them (once keys, messages, PENDING records where
    they may go with the queue's keys, events and counters), so a bulk send
    packs and runs one command per batch, not one per message.
    """
    prepared = [(e, e.encode(*codecs.choose(e.task))) for e in envelopes]
    if not prepared:
        return 0
    by_queue: dict[str, list[tuple[Envelope, str | bytes]]] = {}
    for item in prepared:
        by_queue.setdefault(item[0].queue, []).append(item)
    calls: list[int] = []

    def build(pipe: Any) -> None:
        client = get_broker()
        calls.clear()
        index = 0
        for queue, items in by_queue.items():
            for start in range(0, len(items), topology.BATCH):
                calls.append(index)
                index += queue_publish_many(pipe, client, items[start : start + topology.BATCH])
            index += register_queue(pipe, client, queue)

    def send() -> int:
        replies = run_pipeline(get_broker(), build)  # made inside the retry, as in publish()
        return sum(sum(int(flag) for flag in replies[index]) for index in calls)

    count = with_publish_retry(
        f"send {len(prepared)} tasks", send, task_ids=[e.id for e, _ in prepared]
    )
    _record_pending_elsewhere([envelope for envelope, _ in prepared])
    return count


def queue_publish_many(
    pipe: Any, client: redis.Redis, batch: Sequence[tuple[Envelope, str | bytes]]
) -> int:
    """Queue one ``enqueue_many.lua`` call for ``batch`` (messages of one queue, with bodies).

    Its reply lists 1 for each message queued, 0 for one whose once key
    existed already. Where the result keys may not go with the queue's
    keys (a Cluster), the PENDING records follow as SET NX commands in
    their own slots. Returns how many commands were queued.
    """
    settings = taskq_settings
    queue = batch[0][0].queue
    on_broker = backend_is_broker()
    in_script = on_broker and not topology.is_cluster(client)
    with_events, with_counters = settings.EVENTS, settings.METRICS
    now = time.time()
    streams: dict[int, str] = {}
    script_keys: list[Any] = [keys.delayed(queue), keys.events(queue), keys.metrics(queue)]
    args: list[Any] = [
        len(batch),
        int(default_once_ttl() * 1000),
        keys.delayed_wake(),
        queue,
        int(settings.EVENTS_MAXLEN),
        1 if in_script else 0,
    ]
    ttls: list[int] = []
    beside: list[Envelope] = []
    for envelope, body in batch:
        stream = streams.get(envelope.priority)
        if stream is None:
            stream = streams[envelope.priority] = keys.stream(queue, envelope.priority)
        script_keys += (stream, keys.once(queue, once_token(envelope)))
        due_ms = 0
        if envelope.eta is not None and envelope.eta > now:
            due_ms = math.ceil(envelope.eta * 1000 - ETA_TOLERANCE_MS)
        pending = ""
        if not envelope.ignore_result:
            if in_script:
                pending = pending_record(envelope)
            elif on_broker:
                beside.append(envelope)
        if in_script:
            script_keys.append(keys.result(envelope.id))
            ttls.append(_result_ttl(envelope) if pending else 0)
        args += (
            body,
            envelope.id,
            due_ms,
            envelope.priority,
            events.encode_one(events.sent_event(envelope, body)) if with_events else "",
            counters.field(counters.SENT, envelope.task) if with_counters else "",
            pending,
        )
    args += ttls
    scripts.queue_evalsha(pipe, client, "enqueue_many", script_keys, args)
    for envelope in beside:
        pipe.set(
            keys.result(envelope.id), pending_record(envelope), px=_result_ttl(envelope), nx=True
        )
    return 1 + len(beside)


def _result_ttl(envelope: Envelope) -> int:
    """Milliseconds to keep ``envelope``'s PENDING record: TASKQ_RESULT_EXPIRES past its ETA.

    Counted from the ETA, not from now: a task due in a week must still be
    known (``exists()``, Django's ``get_result()``) while it waits.
    """
    ttl = int(float(taskq_settings.RESULT_EXPIRES) * 1000)
    if envelope.eta is not None:
        ttl += max(0, math.ceil((envelope.eta - time.time()) * 1000))
    return ttl


@_pending_records_best_effort
def _record_pending_elsewhere(envelopes: list[Envelope]) -> None:
    """Write PENDING records, in one round trip, when results live on another Redis.

    SET NX: a worker may have stored a later state already. (On the broker
    the record is written in the publishing pipeline itself.)
    """
    if backend_is_broker():
        return
    wanted = [e for e in envelopes if not e.ignore_result]
    if not wanted:
        return
    pipe = get_backend().pipeline(transaction=False)
    for envelope in wanted:
        pipe.set(
            keys.result(envelope.id), pending_record(envelope), px=_result_ttl(envelope), nx=True
        )
    pipe.execute()
