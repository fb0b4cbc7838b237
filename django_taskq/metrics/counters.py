"""Task counters and histograms, kept in Redis per queue and written in batches.

Prometheus counters must add up across every process that does the work
(each prefork child, every worker, every producer) and be readable from any
process (a Django view, a worker's ``--metrics-port``). So they are kept in
one hash per queue, ``{<prefix>:<queue>}:metrics``: a producer's ``sent``
count is incremented by enqueue.lua in the publishing step, and a worker's
flush increments the counts of the whole batch it settles, aggregated in
Python first (one HINCRBY per distinct field, not per task).

A field is ``<metric>\\t<task name>\\t<worker>`` (the worker is empty for
``sent``); histograms add the bucket's upper bound as a fourth part and keep
per-bucket counts (the reader sums them into Prometheus's cumulative form),
plus ``<metric>_sum`` and ``<metric>_count`` fields.

The same counters.lua call adds the flush's endings (succeeded, failed,
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
#: Seconds a minute's throughput hash lives (the dashboard shows one hour).
THROUGHPUT_TTL = 7200

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


class _Series:
    """The counts of one (queue, task, worker) in one flush."""

    __slots__ = ("buckets", "counts", "observed", "sums")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.buckets: dict[tuple[str, int], int] = {}  # (histogram, bucket index) -> n
        self.sums: dict[str, float] = {}
        self.observed: dict[str, int] = {}


class Batch:
    """The counts of one flush, written with one counters.lua call per queue.

    Counting is a few dictionary updates per task; the field names are made
    once per flush, when the batch is written.
    """

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, str], _Series] = {}

    def __bool__(self) -> bool:
        return bool(self.series)

    def _of(self, queue: str, task: str, worker: str) -> _Series:
        key = (queue, task, worker)
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        return series

    def count(self, queue: str, metric: str, task: str, worker: str, n: int = 1) -> None:
        counts = self._of(queue, task, worker).counts
        counts[metric] = counts.get(metric, 0) + n

    def observe(self, queue: str, metric: str, task: str, worker: str, seconds: float) -> None:
        series = self._of(queue, task, worker)
        key = (metric, bisect.bisect_left(BUCKETS, seconds))
        series.buckets[key] = series.buckets.get(key, 0) + 1
        series.sums[metric] = series.sums.get(metric, 0.0) + seconds
        series.observed[metric] = series.observed.get(metric, 0) + 1

    def task_ended(
        self,
        queue: str,
        task: str,
        worker: str,
        metric: str | None,
        runtime: float | None,
        wait: float | None,
    ) -> None:
        """Count one settled message: received, and (if it ran) started, its times, its end."""
        series = self._of(queue, task, worker)
        counts = series.counts
        counts[RECEIVED] = counts.get(RECEIVED, 0) + 1
        if metric is not None:
            counts[metric] = counts.get(metric, 0) + 1
        if runtime is None:
            return
        counts[STARTED] = counts.get(STARTED, 0) + 1
        buckets, sums, observed = series.buckets, series.sums, series.observed
        for name, seconds in ((RUNTIME, runtime), (WAIT, wait or 0.0)):
            key = (name, bisect.bisect_left(BUCKETS, seconds))
            buckets[key] = buckets.get(key, 0) + 1
            sums[name] = sums.get(name, 0.0) + seconds
            observed[name] = observed.get(name, 0) + 1

    def merge(self, other: Batch) -> None:
        """Add ``other``'s counts (a flush that failed, to be written with the next)."""
        for key, theirs in other.series.items():
            mine = self.series.get(key)
            if mine is None:
                self.series[key] = theirs
                continue
            for name, n in theirs.counts.items():
                mine.counts[name] = mine.counts.get(name, 0) + n
            for bucket, n in theirs.buckets.items():
                mine.buckets[bucket] = mine.buckets.get(bucket, 0) + n
            for name, total in theirs.sums.items():
                mine.sums[name] = mine.sums.get(name, 0.0) + total
            for name, n in theirs.observed.items():
                mine.observed[name] = mine.observed.get(name, 0) + n

    def increments(self) -> dict[str, list[str]]:
        """queue -> flat [field, increment, ...] for the counters hash."""
        out: dict[str, list[str]] = {}
        for (queue, task, worker), series in self.series.items():
            flat = out.setdefault(queue, [])
            for metric, n in series.counts.items():
                flat += [field(metric, task, worker), str(n)]
            for (metric, index), n in series.buckets.items():
                bound = repr(BUCKETS[index]) if index < len(BUCKETS) else INF
                flat += [field(metric, task, worker, bound), str(n)]
            for metric, n in series.observed.items():
                flat += [field(f"{metric}_count", task, worker), str(n)]
            for metric, total in series.sums.items():
                flat += [field(f"{metric}_sum", task, worker), f"{total:.6f}"]
        return out

    def endings(self) -> dict[str, dict[str, int]]:
        """queue -> {ending counter: n} for the minute's throughput hash."""
        out: dict[str, dict[str, int]] = {}
        for (queue, _task, _worker), series in self.series.items():
            minute = out.setdefault(queue, {})
            for metric in ENDINGS:
                n = series.counts.get(metric)
                if n:
                    minute[metric] = minute.get(metric, 0) + n
        return out

    def queue_writes(self, pipe: Any, client: Any, now: float | None = None) -> None:
        """Queue one counters.lua call per queue (a bare EVALSHA; see run_pipeline)."""
        from django_taskq.broker import keys, scripts

        minute = int((time.time() if now is None else now) // 60)
        endings = self.endings()
        for queue, flat in self.increments().items():
            tail: list[str] = []
            for metric, n in endings.get(queue, {}).items():
                tail += [metric, str(n)]
            scripts.queue_evalsha(
                pipe,
                client,
                "counters",
                [keys.metrics(queue), keys.throughput(queue, minute)],
                [str(THROUGHPUT_TTL), str(len(flat) // 2), *flat, *tail],
            )


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
                    metric = name.decode() if isinstance(name, bytes) else str(name)
                    try:
                        n = int(value)
                    except (TypeError, ValueError):
                        continue
                    totals[minute][metric] = totals[minute].get(metric, 0) + n
    return [(minute * 60, totals[minute]) for minute in wanted]
