"""The worker's final event text: the fast path for a first-try success says
exactly what the general path says, for any id, name and result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from django_taskq import states
from django_taskq.messages import Envelope
from django_taskq.trace import Outcome
from django_taskq.worker import settle
from django_taskq.worker.streams import Delivery

NOW, RECEIVED, STARTED = 1_796_333_513.4496, 1_796_333_513.2, 1_796_333_513.3

ODD = [
    ("plain-id", "tests.testapp.tasks.add", 2),
    ('quo"te\\back', "t.ünï", 'naïve "text"\n'),
    ("\u2028line", "t.x", None),
    ("id", "t.x", {"nested": [1, 2.5, "é"]}),
]


def _event(envelope: Envelope, outcome: Outcome, kind: str = "succeeded") -> dict[str, Any]:
    delivery = Delivery("taskq:{default}:q:5", "1-1", {}, received=RECEIVED)
    text = settle.final_event(
        kind,
        delivery,
        envelope,
        outcome,
        now=NOW,
        started=STARTED,
        deliveries=1,
        reason=None,
        republish=None,
        repr_limit=200,
    )
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.mark.parametrize(("task_id", "name", "value"), ODD)
def test_a_first_try_success_is_the_same_event_as_a_retried_one(
    task_id: str, name: str, value: Any
) -> None:
    outcome = Outcome(states.SUCCESS, value=value, runtime=0.0125)
    fast = _event(Envelope(id=task_id, task=name), outcome)
    general = _event(Envelope(id=task_id, task=name, retries=2), outcome)  # the general path
    assert general.pop("rty") == 2
    assert fast == general
    assert fast == {
        "k": "succeeded",
        "id": task_id,
        "n": name,
        "ts": int(NOW * 1000),
        "rcv": int(RECEIVED * 1000),
        "dc": 1,
        "st": int(STARTED * 1000),
        "rt": 12500,
        "res": repr(value),
    }


def test_a_group_member_s_success_names_its_group() -> None:
    outcome = Outcome(states.SUCCESS, value=1, runtime=0.001)
    event = _event(Envelope(id="a", task="t.x", group_id="g-1"), outcome)
    assert event["grp"] == "g-1" and event["res"] == "1"


def test_the_quoted_names_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settle, "_QUOTED_NAMES", {})
    monkeypatch.setattr(settle, "_QUOTED_NAMES_MAX", 3)
    outcome = Outcome(states.SUCCESS, value=1, runtime=0.001)
    for i in range(10):
        assert _event(Envelope(id="a", task=f"t.n{i}"), outcome)["n"] == f"t.n{i}"
    assert len(settle._QUOTED_NAMES) == 3
