"""Dead letters from outside a worker: list them, put them back on their queue, delete them.

A dead letter is an entry of its queue's dead stream (``keys.dead(queue)``):
every field the message had, plus ``reason``, ``stream`` (where it was) and
``at``. Its entry id (``1700000000000-0``) names it within its queue; the
same id may exist in two queues, so the functions here take ``queue=`` to
act on one queue (the admin acts per queue of its selection) or search
every known queue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django_taskq import bodies
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.broker.errors import translating_errors
from django_taskq.control.errors import BadRequest
from django_taskq.control.queues import known_queues

#: Fields a dead letter has beside those of the entry it was.
DEAD_FIELDS = (b"reason", b"stream", b"at")
#: A stream entry id, as Redis writes them (``<ms>-<seq>``).
ENTRY_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
#: Entries moved per MULTI when a whole dead stream is requeued or deleted.
PAGE = 500


@translating_errors("read dead letters")
def dead_letters(
    count: int = 20, queues: Iterable[str] | None = None, *, queue: str | None = None
) -> list[dict[str, str]]:
    """The newest dead letters of ``queues`` (default: all), newest first, with their reason.

    Each row holds the entry's fields (``i``: the task id, ``b``: the body,
    ``reason``, ``stream``, ``at``) as text, plus ``entry_id``, ``queue`` and
    ``content`` (the body's serializer and compression: ``json``,
    ``msgpack+zlib``...). A body that is not UTF-8 (msgpack, compressed)
    is ``bodies.to_text()``'s ``base64:...``, which ``bodies.from_text()``
    turns back into the bytes.
    """
    client: Any = get_broker()
    names = _queues(queues, queue)
    rows = []
    for name in names:
        for entry_id, fields in client.xrevrange(keys.dead(name), count=count):
            row = {_s(k): _s(v) for k, v in fields.items() if k != b"b"}
            if b"b" in fields:
                row["b"] = bodies.to_text(fields[b"b"])
                row["content"] = bodies.content_of(fields[b"b"])
            row["entry_id"] = _s(entry_id)
            row["queue"] = name
            rows.append(row)
    rows.sort(key=lambda r: _entry_order(r["entry_id"]), reverse=True)
    return rows[:count]


@translating_errors("read dead letters")
def requeue_refusals(entry_ids: Iterable[str], *, queue: str | None = None) -> dict[str, str]:
    """Entry id -> why requeueing it would only dead-letter it again, for those of ``entry_ids``.

    A dead letter whose body cannot be decoded (corrupt or cut-off bytes,
    an unknown codec, a field no worker can use) is refused; one that only
    this process cannot read (a codec's library missing here, a pickled
    body) is not: the workers may. Ids not found are left out (they are
    "gone" to ``requeue_dead``). ``queue`` None looks in every known queue.
    """
    client: Any = get_broker()
    wanted = _check_ids(entry_ids) or []
    refused = {}
    for _name, found in _pages(client, wanted, _queues(None, queue)):
        for entry_id, fields in found:
            body = fields.get(b"b")
            if body is None:
                refused[_s(entry_id)] = "it has no message body"
                continue
            read = bodies.read(body)
            if not read.ok and not read.here_only:
                refused[_s(entry_id)] = read.problem
    return refused


@translating_errors("requeue dead letters")
def requeue_dead(
    entry_ids: Iterable[str] | None = None,
    queues: Iterable[str] | None = None,
    *,
    queue: str | None = None,
) -> int:
    """Put dead letters back on their streams with a fresh delivery count; returns how many.

    ``entry_ids`` None: every dead letter of the queues. Each goes back with
    the fields it had, minus the dead letter's own and any verdict, and
    leaves the dead stream in the same MULTI (one queue's slot), so it is
    never both a dead letter and queued, nor neither. Ids not found (moved
    or deleted meanwhile) are skipped: compare the count to see.
    """
    client: Any = get_broker()
    moved = 0
    for name, page in _pages(client, _check_ids(entry_ids), _queues(queues, queue)):
        valid_streams = set(keys.queue_streams(name))
        pipe = client.pipeline(transaction=True)
        for entry_id, fields in page:
            stream = _s(fields.get(b"stream", b""))
            if stream not in valid_streams:
                stream = keys.stream(name, 0)
            back = {k: v for k, v in fields.items() if k not in DEAD_FIELDS and k != b"v"}
            back[b"dc"] = b"0"
            pipe.xadd(stream, back)
            pipe.xdel(keys.dead(name), entry_id)
        pipe.execute()
        moved += len(page)
    return moved


@translating_errors("delete dead letters")
def delete_dead(
    entry_ids: Iterable[str] | None = None,
    queues: Iterable[str] | None = None,
    *,
    queue: str | None = None,
) -> int:
    """Delete dead letters for good (``entry_ids`` None: all of the queues); returns how many."""
    client: Any = get_broker()
    wanted = _check_ids(entry_ids)
    deleted = 0
    for name in _queues(queues, queue):
        if wanted is None:
            pipe = client.pipeline(transaction=True)
            pipe.xlen(keys.dead(name))
            pipe.delete(keys.dead(name))
            deleted += int(pipe.execute()[0])
        else:
            deleted += int(client.xdel(keys.dead(name), *wanted)) if wanted else 0
    return deleted


def _pages(
    client: Any, wanted: list[str] | None, names: list[str]
) -> Iterable[tuple[str, list[tuple[Any, dict[bytes, bytes]]]]]:
    """(queue, entries) in pages of at most PAGE: the wanted ids found, or every entry."""
    for name in names:
        dead = keys.dead(name)
        if wanted is not None:
            pipe = client.pipeline(transaction=False)
            for entry_id in wanted:
                pipe.xrange(dead, entry_id, entry_id)
            found = [e for reply in pipe.execute() for e in reply]
            for start in range(0, len(found), PAGE):
                yield name, found[start : start + PAGE]
            continue
        while True:
            page = client.xrange(dead, count=PAGE)
            if not page:
                break
            yield name, page


def _check_ids(entry_ids: Iterable[str] | None) -> list[str] | None:
    if entry_ids is None:
        return None
    ids = [str(i).strip() for i in entry_ids]
    bad = [i for i in ids if not ENTRY_ID.match(i)]
    if bad:
        raise BadRequest(
            f"{', '.join(repr(i) for i in bad)} {'is' if len(bad) == 1 else 'are'} not a dead "
            "letter's entry id: entry ids look like 1700000000000-0 (the first column of "
            "taskq_dead)"
        )
    return list(dict.fromkeys(ids))


def _queues(queues: Iterable[str] | None, queue: str | None) -> list[str]:
    if queue is not None:
        return [keys.check_queue_name(queue, "queue")]
    if queues is not None:
        return [keys.check_queue_name(q, "queues") for q in queues]
    return known_queues()


def _entry_order(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return 0, 0


def _s(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)
