"""Task counters and histograms, kept in Redis per queue and written in batches.

Prometheus counters must add up across every process that does the work
(each prefork child, every worker, every producer) and be readable from any
process (a Django view, a worker's ``--metrics-port``). So they are kept in
one hash per queue, ``{<prefix>:<queue>}:metrics``: a producer's ``sent``
count is incremented by enqueue.lua in the publishing step, and a worker's
flush increments the counts of the whole batch it settles, aggregated in
Python first (one HINCRBY per distinct field, not per task), in the
settle.lua call that also acks the batch (broker/queue_flush.py).

A field is ``<metric>\\t<task name>\\t<worker>`` (the worker is empty for
``sent``); histograms add the bucket's upper bound as a fourth part and keep
per-bucket counts (the reader sums them into Prometheus's cumulative form),
plus ``<metric>_sum`` and ``<metric>_count`` fields.

The same call adds the flush's endings (succeeded, failed,
retried, revoked, rejected) to the queue's hash of the current minute,
``{<prefix>:<queue>}:tput:<epoch minute>``, kept two hours: the admin's
dashboard reads the last hour of them. ``read()`` and ``throughput()`` are
the readers every consumer of these numbers uses (Prometheus, the admin).
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

SEP = "\t"

#: Counter names (Prometheus adds ``taskq_task_`` and ``_total``).
RECEIVED = "received"
STARTED = "started"
SUCCEEDED = "succeeded"
FAILED = "failed"
RETRIED = "retried"
REVOKED = "revoked"
REJECTED = "rejected"  # dead-lettered
SENT = "sent"
COUNTERS = (SENT, RECEIVED, STARTED, SUCCEEDED, FAILED, RETRIED, REVOKED, REJECTED)

#: Counters that end a task, also counted per minute for the dashboard.
ENDINGS = (SUCCEEDED, FAILED, RETRIED, REVOKED, REJECTED)

#: Histogram names: seconds a task ran, seconds it waited in its queue.
RUNTIME = "runtime"
WAIT = "wait"
HISTOGRAMS = (RUNTIME, WAIT)

#: Upper bounds of the histogram buckets, in seconds (Prometheus's defaults).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
INF = "+Inf"


def field(metric: str, task: str, worker: str = "", bucket: str | None = None) -> str:
    parts = [metric, task, worker]
    if bucket is not None:
        parts.append(bucket)
    return SEP.join(parts)


def bucket_of(seconds: float) -> str:
    """The upper bound of the bucket ``seconds`` falls in."""
    index = bisect.bisect_left(BUCKETS, seconds)
    return repr(BUCKETS[index]) if index < len(BUCKETS) else INF


#: The counters of a series, in the order of its slots (received and started first).
_COUNTED = (RECEIVED, STARTED, SUCCEEDED, FAILED, RETRIED, REVOKED, REJECTED, SENT)
_SLOT = {name: index for index, name in enumerate(_COUNTED)}
_BUCKETS = len(BUCKETS) + 1  # the last is +Inf
_RUNTIME = len(_COUNTED)  # first runtime bucket slot
_WAIT = _RUNTIME + _BUCKETS  # first wait bucket slot
_SUMS = _WAIT + _BUCKETS  # runtime sum, then wait sum
_SUMS_WAIT = _SUMS + 1
_WIDTH = _SUMS + 2
_find = bisect.bisect_left
_BOUNDS = (*(repr(b) for b in BUCKETS), INF)


class Batch:
    """The counts of one flush, written with the flush's settle.lua call per queue.

    Counting a task is a few list increments (each (queue, task, worker)
    series is one flat list of slots: the counters, then the runtime and
    wait buckets, then the two sums); the field names are made once per
    flush, when the batch is written. Every observed task is counted as
    started, so a histogram's count is the series' ``started``.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], list[float]] = {}

    def __bool__(self) -> bool:
        return bool(self.series)

    def _row(self, key: tuple[str, str, str]) -> list[float]:
        row = self.series.get(key)
        if row is None:
            row = self.series[key] = [0] * _WIDTH
        return row

    def count(self, queue: str, metric: str, task: str, worker: str, n: int = 1) -> None:
        """Add ``n`` to one counter (enqueue.lua counts ``sent``; this is for the rest)."""
        self._row((queue, task, worker))[_SLOT[metric]] += n

    def task_ended(
        self,
        queue: str,
        task: str,
        worker: str,
        metric: str | None,
        runtime: float | None,
        wait: float | None,
    ) -> None:
        """Count one settled message: received, and (if it ran) started, its times, its end.

        Runs for every task a worker ends, so it reads module constants
        only (``_find`` is ``bisect.bisect_left`` without the attribute read).
        """
        row = self.series.get((queue, task, worker))
        if row is None:
            row = self._row((queue, task, worker))
        row[0] += 1  # received
        if metric is not None:
            row[_SLOT[metric]] += 1
        if runtime is None:
            return
        if wait is None:
            wait = 0.0
        row[1] += 1  # started
        row[_RUNTIME + _find(BUCKETS, runtime)] += 1
        row[_WAIT + _find(BUCKETS, wait)] += 1
        row[_SUMS] += runtime
        row[_SUMS_WAIT] += wait

    def merge(self, other: Batch) -> None:
        """Add ``other``'s counts (a flush that failed, to be written with the next)."""
        for key, theirs in other.series.items():
            mine = self.series.get(key)
            if mine is None:
                self.series[key] = list(theirs)
            else:
                self.series[key] = [a + b for a, b in zip(mine, theirs, strict=True)]

    def increments(self) -> dict[str, list[str]]:
        """queue -> flat [field, increment, ...] for the counters hash."""
        out: dict[str, list[str]] = {}
        for (queue, task, worker), row in self.series.items():
            flat = out.setdefault(queue, [])
            for index, metric in enumerate(_COUNTED):
                if row[index]:
                    flat += [field(metric, task, worker), str(int(row[index]))]
            started = int(row[1])
            if not started:
                continue
            for metric, first, total in ((RUNTIME, _RUNTIME, _SUMS), (WAIT, _WAIT, _SUMS + 1)):
                for index, bound in enumerate(_BOUNDS):
                    n = row[first + index]
                    if n:
                        flat += [field(metric, task, worker, bound), str(int(n))]
                flat += [field(f"{metric}_count", task, worker), str(started)]
                flat += [field(f"{metric}_sum", task, worker), f"{row[total]:.6f}"]
        return out

    def endings(self) -> dict[str, list[str]]:
        """queue -> flat [ending counter, n, ...] for the minute's throughput hash."""
        totals: dict[str, dict[str, int]] = {}
        for (queue, _task, _worker), row in self.series.items():
            minute = totals.setdefault(queue, {})
            for metric in ENDINGS:
                n = int(row[_SLOT[metric]])
                if n:
                    minute[metric] = minute.get(metric, 0) + n
        return {
            queue: [str(part) for pair in minute.items() for part in pair]
            for queue, minute in totals.items()
        }

    def queue_writes(self, pipe: Any, client: Any, now: float | None = None) -> None:
        """Queue one settle.lua call per queue with only these counts (a bare EVALSHA).

        The worker's flush instead passes ``increments()`` and ``endings()``
        to the settle.lua call that also holds its acks and events.
        """
        from django_taskq.broker.queue_flush import queue_settle

        endings = self.endings()
        for queue, flat in self.increments().items():
            ending = endings.get(queue, ())
            queue_settle(pipe, client, queue, counters=flat, endings=ending, now=now)


def parse(name: str) -> tuple[str, str, str, str | None] | None:
    """``(metric, task, worker, bucket)`` of a field, or None for one not written here."""
    parts = name.split(SEP)
    if len(parts) == 3:
        return parts[0], parts[1], parts[2], None
    if len(parts) == 4:
        return parts[0], parts[1], parts[2], parts[3]
    return None


# -- reading ---------------------------------------------------------------------


@dataclass
class Histogram:
    """One histogram series: per-bucket counts (upper bound -> n), sum and count."""

    buckets: dict[str, float] = dataclass_field(default_factory=dict)
    sum: float = 0.0
    count: float = 0.0

    def cumulative(self) -> list[tuple[str, float]]:
        """(upper bound, observations at or below it) in Prometheus's order, +Inf last."""
        out: list[tuple[str, float]] = []
        total = 0.0
        for bound in (*(repr(b) for b in BUCKETS), INF):
            total += self.buckets.get(bound, 0.0)
            out.append((bound, total))
        return out


@dataclass
class Snapshot:
    """Every counter and histogram of some queues, as read from Redis.

    ``counters[(metric, queue, task, worker)]`` is a count (``worker`` is ""
    for ``sent``); ``histograms[(metric, queue, task, worker)]`` a Histogram.
    """

    counters: dict[tuple[str, str, str, str], float] = dataclass_field(default_factory=dict)
    histograms: dict[tuple[str, str, str, str], Histogram] = dataclass_field(default_factory=dict)

    def add_hash(self, queue: str, raw: dict[Any, Any]) -> None:
        """Fold one queue's counters hash (HGETALL reply) in; unknown fields are skipped."""
        for name, value in raw.items():
            name = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
            parsed = parse(name)
            if parsed is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                continue
            metric, task, worker, bucket = parsed
            if metric in COUNTERS and bucket is None:
                key = (metric, queue, task, worker)
                self.counters[key] = self.counters.get(key, 0.0) + number
                continue
            base, _, part = metric.rpartition("_")
            if bucket is not None and metric in HISTOGRAMS:
                hist = self.histograms.setdefault((metric, queue, task, worker), Histogram())
                hist.buckets[bucket] = hist.buckets.get(bucket, 0.0) + number
            elif base in HISTOGRAMS and part in ("sum", "count") and bucket is None:
                hist = self.histograms.setdefault((base, queue, task, worker), Histogram())
                if part == "sum":
                    hist.sum += number
                else:
                    hist.count += number


def read(client: Any, queues: list[str]) -> Snapshot:
    """The counters and histograms of ``queues``: one HGETALL per queue, pipelined."""
    from django_taskq.broker import keys

    snapshot = Snapshot()
    if not queues:
        return snapshot
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        pipe.hgetall(keys.metrics(queue))
    for queue, raw in zip(queues, pipe.execute(), strict=True):
        snapshot.add_hash(queue, raw or {})
    return snapshot


def throughput(
    client: Any, queues: list[str], minutes: int = 60, now: float | None = None
) -> list[tuple[int, dict[str, int]]]:
    """Endings per minute over the last ``minutes``, oldest first, summed over ``queues``.

    Each item is (minute start in epoch seconds, {ending counter: n}); a
    minute with nothing is present with an empty dict.
    """
    from django_taskq.broker import keys

    last = int((time.time() if now is None else now) // 60)
    wanted = list(range(last - minutes + 1, last + 1))
    totals: dict[int, dict[str, int]] = {m: {} for m in wanted}
    if queues:
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            for minute in wanted:
                pipe.hgetall(keys.throughput(queue, minute))
        replies = iter(pipe.execute())
        for _queue in queues:
            for minute in wanted:
                for name, value in (next(replies) or {}).items():
                    metric = name.decode(errors="replace") if isinstance(name, bytes) else str(name)
                    try:
                        n = int(value)
                    except (TypeError, ValueError):
                        continue
                    totals[minute][metric] = totals[minute].get(metric, 0) + n
    return [(minute * 60, totals[minute]) for minute in wanted]
