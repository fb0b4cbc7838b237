"""The leader lease: one holder at a time, renewal, release and expiry."""

from __future__ import annotations

import time

import pytest

from django_taskq.beat.lease import Lease, lease_channel, lease_key


def test_one_holder_at_a_time(broker):
    a, b = Lease(broker, "a", 2), Lease(broker, "b", 2)
    assert a.acquire() and a.held()
    assert not b.acquire() and not b.held()
    assert broker.get(lease_key()) == b"a"
    assert a.renew() and not b.renew()
    assert 0 < b.seconds_until_free() <= 2


def test_expiry_lets_another_take_over_and_the_old_holder_knows(broker):
    a, b = Lease(broker, "a", 1), Lease(broker, "b", 1)
    assert a.acquire()
    time.sleep(1.05)
    assert not a.held()  # it counts its own validity from before it asked
    assert b.acquire()
    assert not a.renew()  # and a renewal cannot steal it back
    assert b.current_holder() == "b"


def test_release_frees_it_at_once_and_tells_followers(broker):
    pubsub = broker.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(lease_channel())
    a, b = Lease(broker, "a", 10), Lease(broker, "b", 10)
    assert a.acquire()
    assert not b.release()  # not b's to release
    assert a.release()
    message = None
    for _ in range(20):
        message = pubsub.get_message(timeout=0.1)
        if message:
            break
    assert message is not None and message["data"] == b"released"
    assert b.acquire()
    pubsub.close()


def test_acquire_after_a_redis_restart(broker, redis_server):
    a = Lease(broker, "a", 5)
    assert a.acquire()
    redis_server.restart()
    assert a.acquire()  # the key was lost with the data; it is simply taken again


def test_lease_must_be_at_least_a_second(broker):
    with pytest.raises(ValueError, match="at least 1 second"):
        Lease(broker, "a", 0.5)
