"""Failover and resharding under load: the worker and the producer go on by themselves.

On a private Sentinel set-up (master, replica, 3 Sentinels) and a private
Redis Cluster (3 masters, 3 replicas), a producer thread keeps calling
``apply_async`` and a prefork worker keeps running what it sends, while:

- the Sentinel master is killed (SIGKILL) and the Sentinels promote the replica;
- the Cluster master that serves the queue is killed and its replica takes over;
- slots, the queue's among them, move to another master with
  ``redis-cli --cluster reshard``.

Measured per fault: how long the set-up took to fail over (until it said
so: the Sentinels name a new master, or every node is ``cluster_state:ok``
with the slots served by the replica), the longest ``apply_async`` under
way meanwhile (the producer waits through the failover instead of
raising, with the publish settings docs/deployment.md recommends), and the
longest time in which the worker finished no task.
Counted: calls that raised (BrokerUnavailable: they were not promised),
tasks promised but never run (lost), tasks run twice (duplicates).

Asserted: the worker never died; the producer and the worker continued
without a restart; no promised task was lost except one whose send
returned less than a second before the kill (what a master acknowledged
and had not yet replicated: Redis's asynchronous replication window,
docs/deployment.md); a reshard loses nothing, leaves nothing pending and
fails no call.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from django_taskq.broker.connection import get_broker
from django_taskq.broker.keys import stream
from django_taskq.testing import RedisServer
from django_taskq.testing_topologies import ClusterServers, SentinelServers
from tests.faults import helpers
from tests.faults.load import Producer
from tests.faults.recorder import END, Recorder
from tests.faults.scale import SCALE
from tests.faults.tasks import fault_fast

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

#: Faults in a row per test (each after the previous one has been recovered).
ROUNDS = 3 if SCALE.name == "full" else 1
#: A promised task lost only if its send returned this close before the kill.
REPLICATION_WINDOW = 1.0
ENV = {"TASKQ_WORKER_HEARTBEAT_TIMEOUT": "6"}
#: The producer's settings docs/deployment.md recommends where failovers happen:
#: a send waits through a failover of a few seconds instead of raising.
RIDE_THROUGH = {
    "TASKQ_PUBLISH_TIMEOUT": 10.0,
    "TASKQ_PUBLISH_RETRY": {
        "max_retries": 100,
        "interval_start": 0.1,
        "interval_step": 0.1,
        "interval_max": 0.5,
    },
}


def _wait_finished_after(recorder: Recorder, producer: Producer, since: float, count: int) -> bool:
    """Wait until ``count`` tasks whose send began after ``since`` have finished."""

    def enough(tally: Any) -> bool:
        return sum(1 for i in producer.ok_after(since) if tally.finished[i]) >= count

    return recorder.wait(enough, 60)


def _worker_gap(recorder: Recorder, at: float, until: float) -> float | None:
    """The longest time around the fault at ``at`` in which no task finished.

    Measured from the last task that finished before the fault (a worker
    busy right up to it) to the first after; later gaps before ``until``
    count too, should the worker stall again.
    """
    ends = sorted(e.at for e in recorder.read().events if e.kind == END)
    before = [t for t in ends if t <= at]
    after = [t for t in ends if at < t < until]
    if not after:
        return None
    points = [before[-1] if before else at, *after]
    return max(b - a for a, b in itertools.pairwise(points))


def _run(
    start_worker: Any,
    recorder: Recorder,
    figures: dict[str, Any],
    fault: Callable[[], tuple[float, Callable[[], None]]],
    *,
    task: Any = fault_fast,
    queue_args: tuple[str, ...] = (),
    durable: bool = False,
) -> tuple[Producer, list[dict[str, Any]]]:
    """Run ROUNDS faults under load; ``fault()`` injects one and returns (time, restore).

    ``durable``: producer and worker wait for a replica (TASKQ_BROKER_MIN_REPLICAS=1),
    so nothing may be lost at all.
    """
    replicas = {"TASKQ_BROKER_MIN_REPLICAS": "1"} if durable else {}
    worker = start_worker("-c", "2", *queue_args, env={**ENV, **replicas})
    helpers.wait_children(worker, 2)
    figures["min_replicas"] = 1 if durable else 0
    settings = override_settings(**RIDE_THROUGH, TASKQ_BROKER_MIN_REPLICAS=1 if durable else 0)
    settings.enable()
    producer = Producer(task, interval=0.005).start()
    rounds: list[dict[str, Any]] = []
    try:
        assert _wait_finished_after(recorder, producer, 0, 200), "no load before the fault"
        for _ in range(ROUNDS):
            at, restore = fault()
            restore()  # the killed server comes back as a replica, as a supervisor restarts it
            entry: dict[str, Any] = {"at": at}
            ok_again = _wait_finished_after(recorder, producer, at, 100)
            entry["recovered"] = ok_again
            rounds.append(entry)
            if not ok_again:
                break
    finally:
        producer.stop()
        settings.disable()
    sent = producer.ok_ids()
    recorder.wait_finished(sent, 60)
    settled = helpers.wait_until(
        lambda: helpers.pending(get_broker()) == 0 and helpers.stream_entries(get_broker()) == 0,
        20,
    )
    tally = recorder.read()
    for entry, after in zip(rounds, [*rounds[1:], None], strict=True):
        at = entry["at"]
        until = after["at"] if after else float("inf")
        gap = _worker_gap(recorder, at, until)
        entry["worker_gap_s"] = round(gap, 3) if gap is not None else None
        entry["failed_calls"] = sum(1 for c in producer.failed() if at - 1 <= c.sent_at < until)
        # The longest send under way at the fault or begun during it: how long
        # a delay() waited through the failover.
        during = [c.took for c in producer.calls if c.sent_at + c.took >= at and c.sent_at < until]
        entry["longest_send_s"] = round(max(during), 3) if during else None
    lost = tally.lost(sent)
    sent_at = producer.sent_at()
    took = {c.task_id: c.took for c in producer.calls}
    kills = [e["at"] for e in rounds]
    unexplained = [
        i
        for i in lost
        if not any(0 <= k - (sent_at[i] + took[i]) <= REPLICATION_WINDOW for k in kills)
    ]
    figures.update(
        rounds=len(rounds),
        promised=len(sent),
        failed_calls=len(producer.failed()),
        failed_kinds=sorted({c.outcome.split(":")[0] for c in producer.failed()}),
        lost=len(lost),
        lost_unexplained=len(unexplained),
        duplicates=len(tally.duplicates()),
        left_pending=helpers.pending(get_broker()),
        settled=settled,
        per_fault=[{k: v for k, v in e.items() if k != "at"} for e in rounds],
        worker_deaths=helpers.death_lines(worker),
    )
    print(f"\n{figures}")
    problems = []
    if len(rounds) < ROUNDS or not all(e["recovered"] for e in rounds):
        problems.append(f"no recovery: {rounds}")
    if unexplained or (durable and lost):
        problems.append(
            f"{len(lost)} promised tasks lost ({len(unexplained)} outside the replication window)"
        )
    if not settled:
        problems.append("messages left pending or in the streams")
    if worker.process.poll() is not None:
        problems.append("the worker died")
    errors = [c.outcome for c in producer.failed() if c.outcome.startswith("error")]
    if errors:
        problems.append(f"calls raised something else than BrokerUnavailable: {errors[:3]}")
    assert not problems, "\n".join(problems) + f"\n{figures}\n{worker.output[-3000:]}"
    return producer, rounds


@pytest.mark.parametrize("durable", [False, True], ids=["async", "min_replicas_1"])
def test_the_sentinel_master_killed_under_load(
    on_sentinel: SentinelServers,
    start_worker: Any,
    recorder: Recorder,
    figures: dict[str, Any],
    durable: bool,
) -> None:
    def fault() -> tuple[float, Callable[[], None]]:
        at = time.time()
        dead = on_sentinel.kill_master()
        _, took = on_sentinel.wait_failover(dead)
        figures.setdefault("failover_s", []).append(round(took, 3))
        return at, lambda: on_sentinel.rejoin(dead)

    _, rounds = _run(start_worker, recorder, figures, fault, durable=durable)
    assert all(e["worker_gap_s"] is not None for e in rounds)


@pytest.mark.parametrize("durable", [False, True], ids=["async", "min_replicas_1"])
def test_a_cluster_master_killed_under_load(
    on_cluster: ClusterServers,
    start_worker: Any,
    recorder: Recorder,
    figures: dict[str, Any],
    durable: bool,
) -> None:
    def fault() -> tuple[float, Callable[[], None]]:
        dead: RedisServer = on_cluster.master_of_key(stream("default", 5))
        at = time.time()
        on_cluster.kill(dead)
        _, took = on_cluster.wait_failover(dead)
        figures.setdefault("failover_s", []).append(round(took, 3))
        return at, lambda: on_cluster.rejoin(dead)

    _, rounds = _run(start_worker, recorder, figures, fault, durable=durable)
    assert all(e["worker_gap_s"] is not None for e in rounds)


def _queue_in_lowest_slots(cluster: ClusterServers, source: RedisServer, count: int) -> str:
    """A queue name whose slot is among the ``count`` lowest slots of ``source``."""
    from redis.crc import key_slot

    first = cluster.slots_of(source)[0][0]
    for n in range(200_000):
        name = f"rs{n}"
        if first <= key_slot(stream(name, 0).encode()) < first + count:
            return name
    raise AssertionError("no queue name in the slots to move")


def test_resharding_under_load_loses_nothing(
    on_cluster: ClusterServers, start_worker: Any, recorder: Recorder, figures: dict[str, Any]
) -> None:
    moved = 200 if SCALE.name == "full" else 50
    source, target = on_cluster.primaries()[:2]
    queue = _queue_in_lowest_slots(on_cluster, source, moved)
    task = fault_fast.s().set(queue=queue)

    def fault() -> tuple[float, Callable[[], None]]:
        at = time.time()
        began = time.monotonic()
        on_cluster.reshard(source, target, moved)  # the first round moves the queue's slot
        figures.setdefault("reshard_s", []).append(round(time.monotonic() - began, 3))
        return at, lambda: None

    producer, _ = _run(start_worker, recorder, figures, fault, task=task, queue_args=("-Q", queue))
    assert on_cluster.master_of_key(stream(queue, 0)).port == target.port  # it did move
    assert not producer.failed(), [c.outcome for c in producer.failed()][:5]
