"""Unique task options: checked where they are given, refused where they cannot hold."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_taskq import shared_task
from django_taskq.unique import default_key
from tests.testapp.tasks import add, unique_gated


@pytest.mark.parametrize("value", [0, -1, float("nan"), float("inf")])
def test_unique_for_must_be_positive(value: float) -> None:
    with pytest.raises(ValueError, match=r"add\.apply_async\(\): unique_for must be a positive"):
        add.apply_async((1, 2), unique_for=value)


@pytest.mark.parametrize("value", ["10", True, [10]])
def test_unique_for_must_be_a_number(value: Any) -> None:
    with pytest.raises(TypeError, match=r"add\.apply_async\(\): unique_for takes a number"):
        add.apply_async((1, 2), unique_for=value)


def test_unique_for_is_checked_when_the_task_is_declared() -> None:
    with pytest.raises(TypeError, match=r"@shared_task .*declared_badly: unique_for takes"):

        @shared_task(unique_for="a minute")
        def declared_badly() -> None: ...


@pytest.mark.parametrize("value", [5, b"key", ""])
def test_unique_key_must_be_a_str(value: Any) -> None:
    with pytest.raises(TypeError, match=r"add\.apply_async\(\): unique_key takes a non-empty str"):
        add.apply_async((1, 2), unique_key=value, unique_for=10)


def test_unique_key_needs_unique_for() -> None:
    with pytest.raises(TypeError, match=r"unique_key='k' needs unique_for=seconds"):
        add.apply_async((1, 2), unique_key="k")


def test_workflows_refuse_unique_options() -> None:
    with pytest.raises(TypeError, match=r"delay\(\) and send_task\(\) only, not of a signature"):
        add.s(1, 2).set(unique_key="k", unique_for=10).delay()


def test_apply_many_and_on_commit_refuse_a_unique_task() -> None:
    with pytest.raises(TypeError, match=r"not of apply_many\(\)"):
        unique_gated.delay_many([("k", 1)])
    with pytest.raises(TypeError, match=r"not of apply_async_on_commit\(\)"):
        unique_gated.delay_on_commit("k", 1)


def test_default_key_is_stable_across_keyword_order() -> None:
    one = default_key("t", [1], {"a": 1, "b": {"x": 1, "y": {2, 1}}})
    two = default_key("t", [1], {"b": {"y": {1, 2}, "x": 1}, "a": 1})
    assert one == two and one.startswith("t:")
    assert default_key("t", [2], {}) != default_key("t", [1], {})


def test_eager_mode_runs_every_call(broker: Any) -> None:
    with override_settings(TASKQ_TASK_ALWAYS_EAGER=True):
        first = add.apply_async((1, 2), unique_key="k", unique_for=10)
        second = add.apply_async((1, 2), unique_key="k", unique_for=10)
    assert (first.get(), second.get()) == (3, 3)
    assert first.id != second.id and not second.existing
    assert broker.dbsize() == 0


@pytest.mark.parametrize("bad", [float("inf"), float("nan"), -1, 0, "60", True, None])
def test_a_retry_with_an_unusable_unique_for_in_its_header_is_left_to_the_ttl(bad: Any) -> None:
    """Whatever a message carries (JSON reads Infinity and NaN), the settle step goes on."""
    from django_taskq import states
    from django_taskq.broker.unique import HEADER, release_of
    from django_taskq.messages import Envelope

    envelope = Envelope(id="t-1", task="t.x", headers={HEADER: {"key": "k", "for": bad}})
    retry = Envelope(id="t-1", task="t.x", eta=1.0)
    assert release_of(envelope, states.RETRY, retry) is None
    assert release_of(envelope, states.SUCCESS, None) == ("k", "t-1", 0)
