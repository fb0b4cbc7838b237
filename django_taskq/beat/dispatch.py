"""Turn a due run into a message and send it exactly once.

Every run is keyed by (periodic task id, due time). The key and the message
go through ``queue_publish(once=...)``: one Lua step sets the key if absent
and enqueues, so two beats (or a beat and its successor after a failover)
can never both send the same run, and a crash cannot separate the two. The
run's once key lives in its queue's slot, so the set-if-absent and the
publish are one step on Redis Cluster too.

A run's message carries its due time as ``eta``, and a task id derived from
(key prefix, periodic task id and name, due time), so every beat builds the
same id for the same run. A run sent before its due time (TASKQ_BEAT_SEND_AHEAD,
see ahead.py) waits in the queue's delayed set until promote.lua moves it;
a run due already goes straight into its stream.

A batch of runs is sent in one pipelined round trip, together with the
``beat:last`` hash (periodic task id -> last due time sent) for the runs
that are due, so a new leader knows what was sent even if the database
write of ``last_run_at`` had not happened yet. Runs sent ahead are written
there when their due time comes (sendahead.py).
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis

from django_taskq.beat.entry import RunOptions, epoch_ms, from_epoch_ms
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.publish import publish, queue_publish, run_pipeline
from django_taskq.codecs import choose as choose_codec
from django_taskq.conf import taskq_settings
from django_taskq.messages import Envelope, new_id
from django_taskq.registry import registry

logger = logging.getLogger("django_taskq.beat")

HEADER_NAME = "periodic_task_name"
HEADER_ID = "periodic_task_id"
HEADER_DUE = "periodic_task_due"


def run_token(periodic_task_id: int, due: dt.datetime) -> str:
    """What names one run: ``run:<id>:<due epoch ms>``.

    Its once key lives in the slot of the queue the run is sent to
    (``keys.once(queue, token)``), set in the same step as the publish.
    """
    return f"run:{periodic_task_id}:{epoch_ms(due)}"


def run_key(periodic_task_id: int, due: dt.datetime, queue: str) -> str:
    """The once key of one run sent to ``queue``."""
    return keys.once(queue, run_token(periodic_task_id, due))


def last_key() -> str:
    """Hash: periodic task id -> epoch ms of the last due time sent."""
    return keys.global_key("beat:last")


#: Namespace of the task ids of periodic runs (uuid5 of the run's identity).
RUN_ID_NAMESPACE = uuid.UUID("5b0c7f2e-2f4a-4d1e-9a3c-6f1d2b7e8a90")


def run_task_id(options: RunOptions, due: dt.datetime) -> str:
    """The task id of the run of ``options`` due at ``due``: the same in every beat.

    A uuid5 of the key prefix, the periodic task's id and name and the due
    millisecond. A new leader that finds a run queued already (its once key
    exists) thereby knows the message's id and can still withdraw it; a
    send retried after a lost reply reuses the id too.
    """
    identity = f"{keys.prefix()}\n{options.periodic_task_id}\n{options.name}\n{epoch_ms(due)}"
    return str(uuid.uuid5(RUN_ID_NAMESPACE, identity))


def eta_of(due: dt.datetime) -> float:
    """``due`` as epoch seconds that publishing turns back into exactly its millisecond.

    The publish step stores ``int(eta * 1000)``; a float of a whole
    millisecond can be a hair below it, which would make the run due (and
    promoted) one millisecond early. The float is nudged up to the next
    representable value until it is not.
    """
    due_ms = epoch_ms(due)
    eta = due_ms / 1000
    while int(eta * 1000) < due_ms:
        eta = math.nextafter(eta, math.inf)
    return eta


def build_envelope(
    options: RunOptions, due: dt.datetime | None, *, extra_headers: dict[str, Any] | None = None
) -> Envelope:
    """The message for one run (``due`` None: a manual "run now", with a fresh id and no eta).

    What does not depend on the due time (arguments checked against the
    task's signature, routing, priority) is built once per periodic task
    and kept on ``options`` (a row that changes gets new options): a burst
    of thousands of runs is sent ahead in well under a second.
    """
    template = _template(options)
    envelope = copy.copy(template)
    headers = dict(template.headers)
    headers.update(extra_headers or {})
    if due is not None:
        headers[HEADER_DUE] = due.astimezone(dt.UTC).isoformat()
        envelope.id = run_task_id(options, due)
        envelope.eta = eta_of(due)
        base = due.timestamp()
    else:
        envelope.id = new_id()
        base = time.time()
    envelope.headers = headers
    envelope.expires = _expiry(options, base)
    envelope.sent_at = time.time()
    return envelope


def _template(options: RunOptions) -> Envelope:
    """The message of ``options`` without its id, eta, expiry and due header (cached)."""
    if options.template is not None:
        return options.template
    headers: dict[str, Any] = dict(options.headers)
    headers[HEADER_NAME] = options.name
    headers[HEADER_ID] = options.periodic_task_id
    if options.task in registry:
        template = registry.get(options.task).build_envelope(
            options.args,
            options.kwargs,
            queue=options.queue or None,
            priority=options.priority,
            headers=headers,
        )
    else:
        # A task only the workers know: route it like task.py would.
        from django_taskq.task import route

        routed = route(options.task)
        priority = options.priority
        if priority is None:
            priority = routed.get("priority")
        if priority is None:
            priority = taskq_settings.DEFAULT_PRIORITY
        template = Envelope(
            id="",
            task=options.task,
            args=list(options.args),
            kwargs=dict(options.kwargs),
            queue=options.queue or routed.get("queue") or taskq_settings.DEFAULT_QUEUE,
            priority=int(priority),
            headers=headers,
        )
    options.template = template
    return template


def _expiry(options: RunOptions, base: float) -> float | None:
    """When a run's message expires: the earliest of the periodic task's limits.

    ``expire_seconds`` counts from the due time (``base``), ``expires`` ends
    the periodic task; with neither, the task's own ``expires`` option
    applies, counted from the due time too (so sending ahead does not
    shorten it).
    """
    expiry: list[float] = []
    if options.expire_seconds:
        expiry.append(base + options.expire_seconds)
    if options.expires is not None:
        expiry.append(options.expires.timestamp())
    if not expiry and options.task in registry:
        default = registry.get(options.task).expires
        if isinstance(default, dt.timedelta):
            expiry.append(base + default.total_seconds())
        elif isinstance(default, int | float) and not isinstance(default, bool):
            expiry.append(base + float(default))
        elif isinstance(default, dt.datetime):
            expiry.append(default.timestamp())
    return min(expiry) if expiry else None


@dataclass
class Run:
    """One due run to send."""

    options: RunOptions
    due: dt.datetime


@dataclass
class Outcome:
    """What happened to one run: sent, duplicate (another beat sent it), or failed.

    ``ahead``: the run was not due yet, so its message waits in the queue's
    delayed set (whoever queued it) until promote.lua moves it at its due time.
    """

    run: Run
    sent: bool = False
    duplicate: bool = False
    error: str | None = None
    task_id: str | None = None
    queue: str | None = None
    ahead: bool = False


def send_runs(runs: list[Run], client: redis.Redis | None = None) -> list[Outcome]:
    """Send runs in one round trip; raises redis errors (the caller retries).

    A run not due yet is queued ahead (its ``eta`` is in the future); see
    ahead.py. A run whose message cannot be built (bad arguments, unknown
    route) is reported as failed and not retried: retrying would fail the
    same way.
    """
    client = client or get_broker()
    ttl = float(taskq_settings.BEAT_RUN_KEY_TTL)
    outcomes: list[Outcome] = []
    prepared: list[tuple[Outcome, Envelope, str | bytes]] = []
    for run in runs:
        outcome = Outcome(run=run)
        outcomes.append(outcome)
        try:
            envelope = build_envelope(run.options, run.due)
            body = envelope.encode(*choose_codec(envelope.task))
        except Exception as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
            continue
        outcome.task_id = envelope.id
        outcome.queue = envelope.queue
        prepared.append((outcome, envelope, body))
    if not prepared:
        return outcomes
    firsts: list[int] = []

    def build(pipe: Any) -> None:
        firsts.clear()
        index = 0
        for outcome, envelope, body in prepared:
            firsts.append(index)
            # queue_publish sends a message whose eta is still ahead to the
            # delayed set; it decides a moment after this, so a run seen
            # ahead here may already be due there (then it goes to its
            # stream, and withdrawing it later finds nothing: it counts as sent).
            outcome.ahead = envelope.eta is not None and envelope.eta > time.time()
            token = run_token(outcome.run.options.periodic_task_id, outcome.run.due)
            index += queue_publish(pipe, client, envelope, body, once=token, once_ttl=ttl)
            if not outcome.ahead:
                pipe.hset(
                    last_key(), str(outcome.run.options.periodic_task_id), epoch_ms(outcome.run.due)
                )
                index += 1

    replies = run_pipeline(client, build)
    for (outcome, _, _), first in zip(prepared, firsts, strict=True):
        published = replies[first]
        outcome.sent = bool(published)
        outcome.duplicate = not published
    return outcomes


def send_now(options: RunOptions) -> Envelope:
    """Send one run right away, outside the schedule (the admin's "run now")."""
    envelope = build_envelope(options, None, extra_headers={"periodic_task_manual": True})
    publish(envelope)
    return envelope


def last_sent(client: redis.Redis, ids: list[int] | None = None) -> dict[int, dt.datetime]:
    """Due times of the last runs sent, from the ``beat:last`` hash."""
    if ids is None:
        raw: dict[Any, Any] = client.hgetall(last_key())
        items = list(raw.items())
    else:
        if not ids:
            return {}
        values = client.hmget(last_key(), [str(i) for i in ids])
        items = [(str(i), v) for i, v in zip(ids, values, strict=True) if v is not None]
    return {int(k): from_epoch_ms(int(v)) for k, v in items}
