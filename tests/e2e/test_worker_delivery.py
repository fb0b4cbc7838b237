"""Worker behaviour end to end: ETA, expiry, retries, revoke, priority, queues."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.exceptions import TaskRevokedError
from tests.testapp.tasks import add, auto_flaky, flaky, limited, record, record_slow, routed_task

pytestmark = pytest.mark.e2e


def _list(broker: Any, key: str) -> list[str]:
    return [v.decode() for v in broker.lrange(key, 0, -1)]


def test_countdown_runs_on_time_not_before(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    sent = time.time()
    result = record.apply_async(("eta", "x"), countdown=1.5)
    result.get(timeout=10)
    ran = result.date_done.timestamp()  # type: ignore[union-attr]
    assert ran >= sent + 1.5
    # The lateness is measured by the benchmark; here only that the worker was
    # woken for the due time rather than finding it by chance much later.
    assert ran - (sent + 1.5) < 1.0


def test_eta_published_while_worker_idle_wakes_it(start_worker: Any) -> None:
    start_worker("-P", "solo")
    time.sleep(0.5)  # the worker is now blocked with nothing due
    import datetime as dt

    eta = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=0.5)
    result = add.apply_async((1, 1), eta=eta)
    assert result.get(timeout=10) == 2
    assert result.date_done >= eta  # type: ignore[operator]


def test_expired_message_is_skipped_as_revoked(start_worker: Any, broker: Any) -> None:
    result = record.apply_async(("expired", "x"), expires=0.2)
    time.sleep(0.4)
    start_worker("-P", "solo")
    with pytest.raises(TaskRevokedError, match="expired at"):
        result.get(timeout=10)
    assert result.state == states.REVOKED
    assert _list(broker, "expired") == []


def test_retry_goes_through_delayed_set_and_succeeds(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    result = flaky.delay("flaky-count", 2)
    assert result.get(timeout=15) == 3
    assert result.retries == 2
    assert int(broker.get("flaky-count")) == 3


def test_autoretry_with_backoff_then_fails_with_original_error(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-P", "solo")
    result = auto_flaky.delay("auto-times")
    with pytest.raises(ConnectionError, match="still down"):
        result.get(timeout=20)
    times = [float(t) for t in _list(broker, "auto-times")]
    assert len(times) == 3  # first try + max_retries=2
    gaps = [b - a for a, b in itertools.pairwise(times)]
    # retry_backoff=True without jitter: 1 s then 1 s (capped by retry_backoff_max=1).
    assert all(g >= 0.95 for g in gaps), gaps


def test_revoked_before_start_never_runs(start_worker: Any, broker: Any) -> None:
    result = record.delay("revoked", "x")
    result.revoke()
    start_worker("-P", "solo")
    add.delay(0, 0).get(timeout=10)  # the worker has consumed past it
    assert result.state == states.REVOKED
    assert _list(broker, "revoked") == []


def test_revoke_terminate_kills_the_running_task(start_worker: Any, broker: Any) -> None:
    worker = start_worker("-c", "1")
    result = record_slow.delay("term", "x", 30)
    deadline = time.monotonic() + 10
    while _list(broker, "term") != ["start:x"] and time.monotonic() < deadline:
        time.sleep(0.05)
    result.revoke(terminate=True)
    with pytest.raises(TaskRevokedError):
        result.get(timeout=10)
    assert add.delay(2, 2).get(timeout=15) == 4, worker.output  # a new child took over
    time.sleep(0.5)
    assert _list(broker, "term") == ["start:x"]


def test_priority_9_runs_first(start_worker: Any, broker: Any) -> None:
    for i in range(5):
        record.apply_async(("prio", f"low{i}"), priority=0)
    record.apply_async(("prio", "mid"), priority=5)
    record.apply_async(("prio", "high"), priority=9)
    start_worker("-P", "solo", "--prefetch", "1")
    last = record.apply_async(("prio", "last"), priority=0)
    last.get(timeout=10)
    order = _list(broker, "prio")
    assert order[:2] == ["high", "mid"], order


def test_queues_in_order_of_preference(start_worker: Any, broker: Any) -> None:
    for i in range(3):
        record.apply_async(("qorder", f"b{i}"), queue="b")
        record.apply_async(("qorder", f"a{i}"), queue="a")
    start_worker("-P", "solo", "-Q", "a,b", "--prefetch", "1")
    deadline = time.monotonic() + 10
    while len(_list(broker, "qorder")) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _list(broker, "qorder") == ["a0", "a1", "a2", "b0", "b1", "b2"]


def test_routed_task_is_only_consumed_from_its_queue(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    result = routed_task.delay("r")
    add.delay(1, 1).get(timeout=10)
    assert result.state == states.PENDING
    assert broker.xlen(keys.stream("routed", 5)) == 1
    start_worker("-P", "solo", "-Q", "routed")
    assert result.get(timeout=10) == "r"


def test_rate_limit_spaces_runs(start_worker: Any, broker: Any) -> None:
    start_worker("-P", "solo")
    results = [limited.delay("rl") for _ in range(10)]
    for r in results:
        r.get(timeout=20)
    times = sorted(float(t) for t in _list(broker, "rl"))
    # 5/s with a burst of 5: ten runs need at least ~1 s.
    assert times[-1] - times[0] >= 0.8, times


def test_reject_with_requeue_runs_again(start_worker: Any, broker: Any) -> None:
    from tests.testapp.tasks import reject_once

    start_worker("-P", "solo")
    assert reject_once.delay("rej").get(timeout=10) == "second time"
    assert broker.xlen(keys.dead("default")) == 0


def test_max_retries_none_retries_past_the_default(start_worker: Any) -> None:
    from tests.testapp.tasks import retry_forever

    start_worker("-P", "solo")
    # TASKQ_TASK_DEFAULT_MAX_RETRIES is 3; None on the task means no limit.
    assert retry_forever.delay("forever", 6).get(timeout=15) == 6


def test_worker_and_revoke_signals_reach_receivers(start_worker: Any, broker: Any) -> None:
    revoked = record.delay("never", "x")
    revoked.revoke()
    expired = record.apply_async(("never", "y"), expires=0.01)
    time.sleep(0.05)
    worker = start_worker("-P", "solo", "-n", "sig@test")
    add.delay(0, 0).get(timeout=10)
    worker.stop()
    assert _list(broker, "signals") == [
        "worker_ready:sig@test",
        f"task_revoked:{revoked.id}:expired=False",
        f"task_revoked:{expired.id}:expired=True",
        "worker_shutdown:sig@test",
    ]
