"""``Task.replace()``: another task goes on under the same id, in the same place of its workflow."""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq import chain, chord, states
from tests.testapp.tasks import (
    add,
    flaky,
    mul,
    replaced_by_add,
    replaced_by_group,
    replaced_twice,
    xsum,
)

pytestmark = pytest.mark.e2e


def test_the_replacement_keeps_the_id_and_its_value_is_the_result(
    start_worker: Any, broker: Any
) -> None:
    start_worker("-P", "solo")
    result = replaced_by_add.delay(2, 3)
    assert result.get(timeout=15) == 5
    assert result.state == states.SUCCESS and result.name == "tests.testapp.tasks.add"
    twice = replaced_twice.delay(4)  # replaced twice: each publish is its own once
    assert twice.get(timeout=15) == 8


def test_a_replaced_step_of_a_chain_hands_on_to_the_next(start_worker: Any) -> None:
    start_worker("-P", "solo")
    workflow = chain(replaced_by_add.s(1, 2), mul.s(10)).apply_async()
    assert workflow.get(timeout=15) == 30


def test_a_replaced_member_of_a_chord_is_counted(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = chord([replaced_by_add.s(1, 2), add.s(3, 4)], xsum.s()).apply_async()
    assert result.get(timeout=15) == 10


def test_eager_mode_runs_the_replacement() -> None:
    assert replaced_by_add.apply((5, 6)).get() == 11


def test_only_a_task_signature_can_replace(start_worker: Any) -> None:
    start_worker("-P", "solo")
    with pytest.raises(TypeError, match="takes one task.s signature"):
        replaced_by_group.delay().get(timeout=15)


def test_replace_outside_a_task_is_refused() -> None:
    with pytest.raises(RuntimeError, match="only allowed inside a running task"):
        replaced_by_add.replace(add.s(1, 1))


def test_a_retried_task_is_not_its_own_child(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = flaky.delay("replace:flaky", 1)
    assert result.get(timeout=15) == 2
    assert result.children == [] and result.parent is None
