"""How the beat leader learns that periodic tasks changed.

Three paths, from fastest to the catch-all:

1. ``post_save``/``post_delete`` of the schedule models and the querysets'
   ``update()``/``bulk_create()`` (wired in ``notify``) call ``bump()`` after
   the transaction commits: it increments a version key in Redis and
   publishes on a channel the leader blocks on, so an admin edit reaches it
   in milliseconds.
2. Database triggers (migration 0002, PostgreSQL and SQLite) increment the
   ``ScheduleVersion`` row on any change, including raw SQL; the leader
   reads that one row every TASKQ_BEAT_VERSION_POLL_SECONDS.
3. ``schedule_changed()`` does both by hand, for code that changes rows
   behind the ORM's back on a database without the triggers.
"""

from __future__ import annotations

import logging
import re

import redis
from django.db import DatabaseError

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker

logger = logging.getLogger("django_taskq.beat")

#: Payload meaning "something changed, reload everything".
ALL = "*"


def version_key() -> str:
    """Redis counter incremented on every schedule change."""
    return keys.global_key("beat:version")


def channel() -> str:
    """Pub/sub channel the leader listens on; payload ``task:<pk>``, ``<model>:<pk>`` or ``*``."""
    return keys.global_key("beat:changed")


def bump(payload: str = ALL) -> None:
    """Increment the Redis version and wake the leader; never raises.

    If Redis is unreachable the change is still picked up, by the database
    version poll, within TASKQ_BEAT_VERSION_POLL_SECONDS.
    """
    try:
        pipe = get_broker().pipeline(transaction=True)
        pipe.incr(version_key())
        pipe.publish(channel(), payload)
        pipe.execute()
    except redis.RedisError as exc:
        logger.warning(
            "could not tell beat that periodic tasks changed (%s); it will notice within "
            "TASKQ_BEAT_VERSION_POLL_SECONDS",
            exc,
        )


def notify(payload: str) -> None:
    """Announce one row's change, with the database version it produced.

    The leader reloads just that row; the version lets it tell whether the
    trigger-maintained counter moved only because of the changes it was told
    about (then no full reload is needed at the next poll).
    """
    try:
        current = db_version()
    except DatabaseError:
        current = None
    bump(payload if current is None else f"{payload}@{current}")


#: What a notice can name: a periodic task, or a schedule its tasks use.
KINDS = frozenset({"task", "intervalschedule", "crontabschedule", "clockedschedule"})
_NUMBER = re.compile(r"[0-9]{1,18}")


def parse(payload: str) -> tuple[str, str, int | None]:
    """``"task:5@12"`` -> ("task", "5", 12); ``"*"`` -> ("*", "", None).

    The channel is plain Redis, so any client can publish anything on it: a
    payload that names no known kind and row id reads as ``*`` (reload
    everything), never an error.
    """
    body, _, db = payload.partition("@")
    kind, _, pk = body.partition(":")
    version = int(db) if _NUMBER.fullmatch(db) else None
    if kind not in KINDS or not _NUMBER.fullmatch(pk):
        return ALL, "", version
    return kind, pk, version


def redis_version(client: redis.Redis) -> int:
    """The version counter in Redis; 0 when it is missing or not a number (someone wrote it)."""
    raw = client.get(version_key())
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def db_version() -> int | None:
    """The trigger-maintained version row (None if it does not exist)."""
    from django_taskq.models import ScheduleVersion

    return (
        ScheduleVersion.objects.filter(pk=ScheduleVersion.SINGLETON)
        .values_list("version", flat=True)
        .first()
    )


def bump_db_version() -> None:
    from django.db.models import F

    from django_taskq.models import ScheduleVersion

    updated = ScheduleVersion.objects.filter(pk=ScheduleVersion.SINGLETON).update(
        version=F("version") + 1
    )
    if not updated:
        ScheduleVersion.objects.get_or_create(pk=ScheduleVersion.SINGLETON, defaults={"version": 1})


def schedule_changed() -> None:
    """Tell beat that periodic tasks or schedules changed outside the ORM's signals.

    Call it after raw SQL, a database restore, or any bulk change made in a
    way that sends no Django signal. It bumps both the Redis version (the
    leader reloads within a second) and the database version row.
    """
    try:
        bump_db_version()
    except DatabaseError as exc:
        logger.warning("could not bump the schedule version row: %s", exc)
    bump(ALL)
