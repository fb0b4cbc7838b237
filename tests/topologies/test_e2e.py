"""The end-to-end behaviour on a Redis Cluster and on a Sentinel master, with real workers.

A short tour that runs in every test session: delay/get, ETA, retries,
chain, group and chord, beat sending each run once with two beats, and a
kill -9 of a worker whose messages another worker recovers. The whole
end-to-end suite runs on each topology with TASKQ_TEST_TOPOLOGY=cluster or
sentinel (CI's newest environment does).
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from typing import Any

import pytest

from django_taskq import chain, chord, group
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from tests.beat.helpers import BeatProcess, sent_messages
from tests.testapp.tasks import add, flaky, mul, record_slow, xsum

pytestmark = pytest.mark.e2e


def test_delay_eta_and_retries(topology: Any, start_worker: Any) -> None:
    start_worker("-P", "solo")
    assert add.delay(2, 3).get(timeout=10) == 5
    sent = time.time()
    later = add.apply_async((1, 1), countdown=0.5)
    assert later.get(timeout=10) == 2
    assert later.date_done.timestamp() >= sent + 0.5  # type: ignore[union-attr]
    retried = flaky.delay("flaky-topology", 2)
    assert retried.get(timeout=15) == 3 and retried.retries == 2


def test_chain_group_and_chord(topology: Any, start_worker: Any) -> None:
    start_worker("-c", "2")
    assert chain(add.s(2, 2), add.s(4), mul.s(2)).delay().get(timeout=15) == 16
    assert group(add.s(i, i) for i in range(10)).delay().get(timeout=15) == [
        i + i for i in range(10)
    ]
    # The header's tasks, results and the chord's counter live in many slots.
    assert chord((add.s(i, i) for i in range(10)), xsum.s()).delay().get(timeout=15) == 90


def _ticks() -> list[str]:
    return sorted(m.due or "" for m in sent_messages(get_broker()) if m.name == "tick")


def _wait_ticks(count: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while len(_ticks()) < count:
        assert time.monotonic() < deadline, f"fewer than {count} runs sent: {_ticks()}"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_two_beats_send_each_run_once_across_a_leader_kill(topology: Any) -> None:
    """The run keys live in the slot of the run's queue; the lease in the global one."""
    import datetime as dt

    from django_taskq.models import IntervalSchedule, PeriodicTask
    from tests.beat.helpers import leader_pid

    every, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.create(
        name="tick", task="tests.testapp.tasks.echo", interval=every, args=["tick"]
    )
    beats = [BeatProcess(f"beat-{n}", env={"TASKQ_TEST_LEASE": "2"}).start() for n in range(2)]
    try:
        _wait_ticks(3)
        leader = next(b for b in beats if b.pid == leader_pid(get_broker()))
        leader.kill()
        sent_before = len(_ticks())
        _wait_ticks(sent_before + 4)
    finally:
        for beat in beats:
            if beat.process is not None and beat.process.poll() is None:
                beat.terminate()
    dues = _ticks()
    counts = Counter(dues)
    assert max(counts.values()) == 1, counts  # none twice
    times = [dt.datetime.fromisoformat(d) for d in dues]
    gaps = {b - a for a, b in itertools.pairwise(times)}
    assert gaps == {dt.timedelta(seconds=1)}, dues  # none missed across the handover


def test_kill_9_of_a_worker_is_recovered_by_another(topology: Any, start_worker: Any) -> None:
    env = {"TASKQ_WORKER_HEARTBEAT_TIMEOUT": "2"}
    victim = start_worker("-P", "solo", env=env)
    result = record_slow.delay("killed-topology", "x", 2.0)
    broker = get_broker()
    deadline = time.monotonic() + 10
    while broker.llen("killed-topology") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert broker.lrange("killed-topology", 0, -1) == [b"start:x"]
    victim.kill()
    start_worker("-P", "solo", env=env)
    result.get(timeout=20)
    assert broker.lrange("killed-topology", 0, -1) == [b"start:x", b"start:x", b"end:x"]
    deadline = time.monotonic() + 10  # acked just after the result is stored
    while broker.xlen(keys.stream("default", 5)):
        assert time.monotonic() < deadline, "the redelivered message was never acked"
        time.sleep(0.02)
