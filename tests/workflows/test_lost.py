"""A chord member that keeps killing its worker settles the chord instead of stalling it."""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq import chord
from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker
from django_taskq.exceptions import ChordError
from tests.testapp.tasks import add, crash, xsum

pytestmark = pytest.mark.e2e


def test_dead_lettered_header_task_fails_the_chord(start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "1")
    result = chord([add.s(1, 1), crash.s("chord-crashes")], xsum.s())()
    crashed_id = result.parent.results[1].id
    # TASKQ_MAX_DELIVERIES=3 in tests: three deaths, then the dead letter, then the chord fails.
    with pytest.raises(
        ChordError,
        match=f"Dependency {crashed_id} raised .*WorkerLostError: .*killed its worker 3 times",
    ):
        result.get(timeout=30)
    assert int(get_broker().get("chord-crashes")) == 3
    assert get_broker().xlen(keys.dead()) == 1
