"""``AsyncResult.children`` and ``collect()``: the tasks a task sent, read from its result."""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq import AsyncResult
from tests.testapp.tasks import add, fan_out

pytestmark = pytest.mark.e2e


def test_children_are_the_tasks_sent_while_it_ran_in_order(start_worker: Any) -> None:
    parent = fan_out.delay(3, 0)
    assert AsyncResult(parent.id).children is None  # not run yet: not known, as in Celery
    start_worker("-P", "solo")
    assert parent.get(timeout=15) == 3
    children = parent.children
    assert children is not None and [c.get(timeout=15) for c in children] == [0, 1, 2]
    assert all(c.parent is not None and c.parent.id == parent.id for c in children)


def test_a_task_that_sent_nothing_has_no_children(start_worker: Any) -> None:
    start_worker("-P", "solo")
    result = add.delay(1, 2)
    assert result.get(timeout=15) == 3
    assert result.children == []


def test_collect_walks_the_tree_depth_first(start_worker: Any) -> None:
    start_worker("-P", "solo")
    root = fan_out.delay(2, 1)
    values = [value for _, value in root.collect(timeout=15)]
    # fan_out(2, 1): add(0, 1), add(1, 1), fan_out(1, 0) -> add(0, 0)
    assert values == [2, 1, 2, 1, 0]
