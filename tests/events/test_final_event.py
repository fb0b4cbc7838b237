"""The worker's final event text: the short way for a first-try success
(``succeeded_event``, what ``Settler.finish`` writes) says exactly what the
general path (``final_event``) says, for any id, name and result."""

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


DELIVERY = Delivery("taskq:{default}:q:5", "1-1", {}, received=RECEIVED)


def _fast(
    envelope: Envelope, outcome: Outcome, monkeypatch: pytest.MonkeyPatch, limit: int = 200
) -> dict[str, Any] | None:
    """``succeeded_event()`` at the time NOW (it reads the clock itself)."""
    monkeypatch.setattr(settle.time, "time", lambda: NOW)
    text = settle.succeeded_event(DELIVERY, envelope, outcome, STARTED, 1, limit)
    monkeypatch.undo()
    return None if text is None else json.loads(text)


def _event(
    envelope: Envelope, outcome: Outcome, kind: str = "succeeded", limit: int = 200
) -> dict[str, Any]:
    text = settle.final_event(
        kind,
        DELIVERY,
        envelope,
        outcome,
        now=NOW,
        started=STARTED,
        deliveries=1,
        reason=None,
        republish=None,
        repr_limit=limit,
    )
    data: dict[str, Any] = json.loads(text)
    return data


@pytest.mark.parametrize(("task_id", "name", "value"), ODD)
def test_a_first_try_success_is_the_same_event_as_a_retried_one(
    task_id: str, name: str, value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = Outcome(states.SUCCESS, value=value, runtime=0.0125)
    fast = _fast(Envelope(id=task_id, task=name), outcome, monkeypatch)
    assert fast == _event(Envelope(id=task_id, task=name), outcome)
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


def test_a_group_member_s_success_names_its_group(monkeypatch: pytest.MonkeyPatch) -> None:
    outcome = Outcome(states.SUCCESS, value=1, runtime=0.001)
    member = Envelope(id="a", task="t.x", group_id="g-1")
    assert _fast(member, outcome, monkeypatch) is None  # the general path writes it
    event = _event(member, outcome)
    assert event["grp"] == "g-1" and event["res"] == "1"


class _Loud:
    def __repr__(self) -> str:
        raise RuntimeError("no repr today")


@pytest.mark.parametrize("value", ["x" * 500, _Loud()], ids=["long", "raising-repr"])
def test_the_short_way_cuts_and_survives_a_result_s_repr(
    value: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcome = Outcome(states.SUCCESS, value=value, runtime=0.001)
    fast = _fast(Envelope(id="a", task="t.x"), outcome, monkeypatch, limit=20)
    assert fast is not None
    assert len(fast["res"]) <= 20
    assert fast["res"].endswith("…") or fast["res"].startswith("<unrepresentable _Loud")
    general = _event(Envelope(id="a", task="t.x", retries=1), outcome, limit=20)
    assert fast["res"] == general["res"]


def test_finish_queues_the_short_way_s_event(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a worker's flush writes for a success is ``succeeded_event()``'s text."""
    settler = settle.Settler("w@h")
    settler.events, settler.metrics = True, True
    monkeypatch.setattr(settle.time, "time", lambda: NOW)
    envelope = Envelope(id="id-1", task="t.x", sent_at=STARTED - 1.0)
    outcome = Outcome(states.SUCCESS, value=3, runtime=0.0125)
    settler.finish(DELIVERY, envelope, outcome, started=STARTED, deliveries=1)
    (text,) = settler.writes.events["default"]
    assert json.loads(text) == _event(envelope, outcome)
    assert settler.writes.counts  # counted too


def test_the_quoted_names_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settle, "_QUOTED_NAMES", {})
    monkeypatch.setattr(settle, "_QUOTED_NAMES_MAX", 3)
    outcome = Outcome(states.SUCCESS, value=1, runtime=0.001)
    for i in range(10):
        assert _event(Envelope(id="a", task=f"t.n{i}"), outcome)["n"] == f"t.n{i}"
    assert len(settle._QUOTED_NAMES) == 3
