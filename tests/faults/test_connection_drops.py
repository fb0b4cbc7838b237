"""Connections between worker and Redis dropped again and again, in each way a network drops them.

The worker talks to Redis through the fault proxy (tests/faults/proxy.py);
the producer thread talks to Redis directly, so only the worker is hurt.
One test per way and pool (prefork, threads), each fault repeated (10 times at full scale):

- FIN and RST of every connection the worker has;
- a 12 s stall of every connection (longer than the 6 s heartbeat timeout
  of the test settings, so the worker is presumed dead meanwhile);
- the reply of a fetch (XREADGROUP, or the fetch script) that returned
  messages dropped after Redis ran it: the messages are in the consumer's
  pending list, but the consumer never saw them.

Exactly: the worker resumes after every fault, every task sent finishes
(0 lost), nothing stays pending in the consumer group or in the streams
(0 stuck: XPENDING on every stream of the queue), and no task runs twice,
except after a stall, where the at-least-once contract allows it (a
partitioned worker's messages are given to the living): those duplicates
are measured, not failed.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest
import redis

from django_taskq.broker import scripts
from django_taskq.conf import taskq_settings
from django_taskq.testing import RedisServer
from tests.faults import helpers
from tests.faults.load import Producer
from tests.faults.proxy import Fault, Proxy
from tests.faults.recorder import Recorder
from tests.faults.scale import SCALE
from tests.faults.tasks import fault_slow

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

TASK_SECONDS = 0.01


def fetch_commands() -> tuple[bytes, ...]:
    """Byte strings found only in a consumer's fetch: XREADGROUP and the fetch script's SHA."""
    found = [b"XREADGROUP"]
    try:
        found.append(hashlib.sha1(scripts.source("fetch").encode()).hexdigest().encode())
    except (FileNotFoundError, OSError):  # the worker may stop shipping fetch.lua
        pass
    return tuple(found)


#: The prefork pool (a consumer per child, each flushing its own writes), and
#: the threads pool (consumers that share one Settler, flushed by one thread:
#: worker/flusher.py), whose flushes fail and are sent again from that thread.
POOLS = {"prefork": ("-c", "2"), "threads": ("-P", "threads", "-c", "4")}


@pytest.mark.parametrize("pool", list(POOLS))
@pytest.mark.parametrize("fault", list(Fault), ids=[f.value for f in Fault])
def test_dropped_connections_lose_nothing(
    fault: Fault,
    pool: str,
    start_worker: Any,
    recorder: Recorder,
    broker: redis.Redis,
    redis_server: RedisServer,
    figures: dict[str, Any],
) -> None:
    heartbeat = float(taskq_settings.WORKER_HEARTBEAT_TIMEOUT)
    with Proxy(redis_server.port) as proxy:
        worker = start_worker(*POOLS[pool], env={"TASKQ_BROKER_URL": proxy.url})
        if pool == "prefork":
            helpers.wait_children(worker, 2)
        producer = Producer(fault_slow, (TASK_SECONDS,), interval=0.01).start()
        problems: list[str] = []
        rounds: list[dict[str, Any]] = []
        try:
            for n in range(SCALE.drops):
                # Between faults: the worker runs what is sent now.
                if not recorder.wait_finished(_sent_after(producer, time.time(), 20), 60):
                    problems.append(f"round {n}: the worker did not resume before the fault")
                    break
                at = time.time()
                hit = _inject(proxy, fault, n)
                if hit is None:
                    problems.append(f"round {n}: the {fault.value} fault never took effect")
                    break
                after = time.time()  # the fault is over (a stall has ended)
                first = _sent_after(producer, after, 10)
                resumed = recorder.wait_finished(first, 60)
                ends = [recorder.read().ends(i)[0] for i in first] if resumed else []
                rounds.append(
                    {
                        "connections": hit,
                        "fault_s": round(after - at, 2),
                        "resume_s": round(min(ends) - after, 3) if ends else None,
                    }
                )
                if not resumed:
                    problems.append(f"round {n}: no task finished within 60 s after the fault")
        finally:
            producer.stop()
        ok_ids = producer.ok_ids()
        # Generous: a message held by a consumer that never saw it may take a
        # heartbeat timeout or two to come back, once the worker handles that.
        finished = recorder.wait_finished(ok_ids, 3 * heartbeat + 15)
        settled = helpers.wait_until(
            lambda: helpers.pending(broker) == 0 and helpers.stream_entries(broker) == 0,
            2 * heartbeat + 10 if finished else 0,
        )
        tally = recorder.read()
        lost = tally.lost(ok_ids)
        duplicates = tally.duplicates()
        figures.update(
            fault=fault.value,
            rounds=len(rounds),
            connections_hit=[r["connections"] for r in rounds],
            resume_s=[r["resume_s"] for r in rounds],
            stall_s=SCALE.stall_seconds if fault is Fault.STALL else None,
            heartbeat_timeout_s=heartbeat,
            sent=len(ok_ids),
            producer_errors=len(producer.failed()),
            lost=len(lost),
            duplicates=len(duplicates),
            stuck_pending=helpers.pending(broker),
            left_in_streams=helpers.stream_entries(broker),
            pending_detail=helpers.pending_detail(broker),
            proxy_connections=proxy.accepted,
            worker_alive=worker.process.poll() is None,
            death_lines=len(helpers.death_lines(worker)),
        )
    if len(rounds) < SCALE.drops and not problems:
        problems.append(f"only {len(rounds)} of {SCALE.drops} rounds ran")
    if lost or not finished:
        problems.append(f"{len(lost)} of {len(ok_ids)} tasks lost")
    if not settled:
        problems.append(
            f"stuck: {helpers.pending(broker)} pending, {helpers.stream_entries(broker)} "
            f"in streams; {helpers.pending_detail(broker)[:5]}"
        )
    if duplicates and fault is not Fault.STALL:
        problems.append(f"{len(duplicates)} tasks ran twice after {fault.value}")
    if worker.process.poll() is not None:
        problems.append(f"the worker exited with {worker.process.returncode}")
    assert not problems, "\n".join(problems)


def _inject(proxy: Proxy, fault: Fault, n: int) -> int | None:
    """Apply round ``n``'s fault; return how many connections it hit (None: it never fired)."""
    if fault is Fault.STALL:
        hit = proxy.stall(SCALE.stall_seconds)
        helpers.wait_until(lambda: not proxy.stalled(), SCALE.stall_seconds + 5)
        return hit
    if fault is Fault.DROP_REPLY:
        # A fetch that returned messages (their bodies name the task), not an empty one.
        proxy.drop_reply(count=1, match=fetch_commands(), reply_match=fault_slow.name.encode())
        if not proxy.wait_applied(Fault.DROP_REPLY, n + 1, 30):
            proxy.disarm()
            return None
        return 1
    hit = proxy.inject(fault)
    return hit if hit else None


def _sent_after(producer: Producer, since: float, count: int) -> list[str]:
    helpers.wait_until(lambda: len(producer.ok_after(since)) >= count, 30)
    return producer.ok_after(since)[:count]
