"""The merge rules, without Redis or a database: any arrival order, any batch split, replays."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from django_taskq.history import fold
from tests.history.helpers import T0, ended, progress, received, sent, started


def at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def rows_after(batches: list[list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Fold ``batches`` one after another, each into the rows the previous ones wrote."""
    stored: dict[str, dict[str, Any]] = {}
    for batch in batches:
        stored.update(fold.fold([("default", e) for e in batch], stored))
    return stored


LIVES = {
    "success": [
        sent("t"),
        received("t", w="taskq@w1"),
        started("t", w="taskq@w1"),
        progress("t", T0 + 1500, {"done": 1, "total": 4}),
        ended("succeeded", "t", res="5", w="taskq@w1"),
    ],
    "retried then failed": [
        sent("t"),
        started("t"),
        ended(
            "retried", "t", T0 + 2000, exc="OSError", msg="try again", tb="tb1", eta=1_765_000_010
        ),
        started("t", T0 + 11_000, rty=1),
        ended("failed", "t", T0 + 12_000, exc="ValueError", msg="boom", tb="tb2", rty=1),
    ],
    "dead-lettered": [sent("t"), ended("dead", "t", msg="unregistered task")],
    "received, handed back, received again": [
        sent("t"),
        received("t", T0 + 500, w="taskq@w1"),
        received("t", T0 + 700, w="taskq@w2"),
        ended("succeeded", "t", res="5", rcv=T0 + 700, w="taskq@w2"),
    ],
}


@pytest.mark.parametrize("life", LIVES)
def test_every_arrival_order_and_batch_split_gives_the_same_row(life: str) -> None:
    events = LIVES[life]
    expected = rows_after([events])
    for order in itertools.permutations(events):
        for cut in range(len(order) + 1):
            got = rows_after([list(order[:cut]), list(order[cut:])])
            assert got == expected, (life, [e["k"] for e in order], cut)
        # Replaying everything on top changes nothing.
        assert rows_after([list(order), list(events)]) == expected


def test_a_successful_life_fills_every_column() -> None:
    body = '{"id":"t"}'
    row = rows_after(
        [
            [
                sent(
                    "t",
                    eta=1_765_000_001,
                    exp=1_765_000_100.5,
                    par="p",
                    root="r",
                    grp="g",
                    per="nightly",
                    rof="old",
                    body=body,
                ),
                started("t", w="taskq@w1"),
                progress("t", T0 + 1500, {"done": 1, "total": 4}),
                ended("succeeded", "t", res="5", w="taskq@w2", dc=2, rty=0),
            ]
        ]
    )["t"]
    assert row == {
        **fold.DEFAULTS,
        "task_name": "tests.testapp.tasks.add",
        "state": "SUCCESS",
        "args": "(2, 3)",
        "kwargs": "{}",
        "result": "5",
        "queue": "default",
        "priority": 5,
        "worker": "taskq@w2",
        "delivery_count": 2,
        "sent_at": at(T0),
        "eta": dt.datetime.fromtimestamp(1_765_000_001, tz=dt.UTC),
        "expires": dt.datetime.fromtimestamp(1_765_000_100.5, tz=dt.UTC),
        "received_at": at(T0 + 500),
        "started_at": at(T0 + 1000),
        "finished_at": at(T0 + 3000),
        "runtime": 2.0,
        "wait_time": 0.0,  # started at T0+1 s, due at its ETA (T0+1 s)
        "parent_id": "p",
        "root_id": "r",
        "group_id": "g",
        "periodic_task_name": "nightly",
        "retry_of": "old",
        "body": body,
        "progress": None,
    }


def test_progress_sets_a_custom_state_until_the_end() -> None:
    rows = rows_after(
        [[sent("t"), started("t"), progress("t", T0 + 1500, {"done": 2}, "CRUNCHING")]]
    )
    assert (rows["t"]["state"], rows["t"]["progress"]) == ("CRUNCHING", {"done": 2})
    rows = rows_after(
        [
            [*[sent("t"), progress("t", T0 + 1500, {"done": 2})]],
            [progress("t", T0 + 1600, {"done": 3})],
        ]
    )
    assert rows["t"]["progress"] == {"done": 3}
    late = rows_after(
        [[sent("t"), ended("succeeded", "t")], [progress("t", T0 + 1500, {"done": 2})]]
    )
    assert (late["t"]["state"], late["t"]["progress"]) == ("SUCCESS", None)


def test_a_late_start_does_not_move_a_finished_row_back() -> None:
    rows = rows_after([[ended("succeeded", "t", w="taskq@w2")], [started("t", w="taskq@w9")]])
    assert (rows["t"]["state"], rows["t"]["worker"]) == ("SUCCESS", "taskq@w2")


def test_a_retried_task_shows_retry_then_its_end() -> None:
    first = [
        sent("t"),
        started("t"),
        ended("retried", "t", T0 + 2000, exc="OSError", msg="later", eta=1_765_000_060),
    ]
    rows = rows_after([first])
    assert rows["t"]["state"] == "RETRY"
    assert (rows["t"]["exception_type"], rows["t"]["reason"]) == ("OSError", "later")
    assert rows["t"]["eta"] == dt.datetime.fromtimestamp(1_765_000_060, tz=dt.UTC)
    # The retry's own start does not show it running again from the start.
    rows = rows_after([first, [started("t", T0 + 61_000, rty=1)]])
    assert (rows["t"]["state"], rows["t"]["retries"]) == ("RETRY", 1)
    rows = rows_after([first, [ended("succeeded", "t", T0 + 62_000, res="ok", rty=1)]])
    assert (rows["t"]["state"], rows["t"]["result"], rows["t"]["retries"]) == ("SUCCESS", "ok", 1)


@pytest.mark.parametrize(
    ("kind", "state"),
    [("failed", "FAILURE"), ("revoked", "REVOKED"), ("expired", "REVOKED"), ("dead", "FAILURE")],
)
def test_each_ending(kind: str, state: str) -> None:
    row = rows_after(
        [[sent("t"), ended(kind, "t", exc="ValueError", msg="why", tb="Traceback...")]]
    )["t"]
    assert row["state"] == state
    assert row["dead_lettered"] is (kind == "dead")
    if kind in ("failed", "dead"):
        assert (row["exception_type"], row["exception_message"], row["traceback"]) == (
            "ValueError",
            "why",
            "Traceback...",
        )
    if kind != "failed":
        assert row["reason"] == "why"


def test_the_later_of_two_endings_wins_and_dead_letters_stay_marked() -> None:
    rows = rows_after(
        [[ended("dead", "t", T0 + 5000, msg="gone")], [ended("failed", "t", T0 + 4000, msg="boom")]]
    )
    assert (rows["t"]["state"], rows["t"]["dead_lettered"], rows["t"]["reason"]) == (
        "FAILURE",
        True,
        "gone",
    )
    rows = rows_after(
        [[ended("failed", "t", T0 + 4000)], [ended("succeeded", "t", T0 + 9000, res="1")]]
    )
    assert (rows["t"]["state"], rows["t"]["result"]) == ("SUCCESS", "1")


def test_a_later_send_replaces_the_send_fields() -> None:
    rows = rows_after(
        [[sent("t", a="(1,)", per="nightly", rof="x")], [sent("t", T0 + 60_000, a="(2,)")]]
    )
    assert (rows["t"]["args"], rows["t"]["periodic_task_name"], rows["t"]["retry_of"]) == (
        "(2,)",
        "",
        "",
    )
    assert rows["t"]["sent_at"] == at(T0 + 60_000)
    # An earlier send read late only fills what is blank.
    rows = rows_after([[sent("t", T0 + 60_000, a="(2,)")], [sent("t", a="(1,)", per="nightly")]])
    assert (rows["t"]["args"], rows["t"]["periodic_task_name"]) == ("(2,)", "nightly")


def test_unreadable_events_are_dropped_and_counted() -> None:
    parsed = fold.Parsed()
    fold.parse_entry({b"e": b"not json"}, parsed)
    fold.parse_entry({b"x": b"[]"}, parsed)
    fold.parse_entry(
        {
            b"e": b'[{"k":"sent","id":"a","ts":1},{"k":"nope","id":"b","ts":1},{"k":"sent","ts":1},'
            b'{"k":"sent","id":"c","ts":"soon"},7,{"k":"progress","id":"d","ts":2,"state":"X"}]',
            b"w": b"taskq@w1",
        },
        parsed,
    )
    assert parsed.dropped == 6
    assert [(e["id"], e["w"]) for e in parsed.events] == [("a", "taskq@w1"), ("d", "taskq@w1")]


def test_values_of_the_wrong_type_or_size_are_not_trusted() -> None:
    row = rows_after(
        [
            [
                sent("t", pr="high", a=["x"], eta="tomorrow", n="x" * 300),
                progress("t", T0 + 5, None, "S" * 80),
            ]
        ]
    )["t"]
    assert (row["priority"], row["args"], row["eta"]) == (None, "", None)
    assert len(row["task_name"]) == 255
    assert row["state"] == "S" * 50


def test_received_is_between_sent_and_started_and_never_goes_back() -> None:
    row = rows_after([[sent("t"), received("t", T0 + 400, w="taskq@w1")]])["t"]
    assert (row["state"], row["worker"], row["received_at"]) == (
        "RECEIVED",
        "taskq@w1",
        at(T0 + 400),
    )
    assert row["started_at"] is None and row["wait_time"] is None
    # Taken again after a hand-back: the later receive names the worker that holds it.
    row = rows_after([[sent("t"), received("t", T0 + 400)], [received("t", T0 + 900, "w2")]])["t"]
    assert (row["state"], row["worker"], row["received_at"]) == ("RECEIVED", "w2", at(T0 + 900))
    # Read after the task started or ended, it changes nothing.
    for later in (started("t", w="taskq@w1"), ended("succeeded", "t", res="5", w="taskq@w1")):
        before = rows_after([[sent("t"), later]])["t"]
        after = rows_after([[sent("t"), later], [received("t", T0 + 9000, "late@w")]])["t"]
        assert after == before, later["k"]


def test_a_received_entry_is_one_event_per_task_id() -> None:
    parsed = fold.Parsed()
    fold.parse_entry({b"r": b'["a","b"]', b"ts": b"1765000000500", b"w": b"taskq@w1"}, parsed)
    assert parsed.dropped == 0
    assert parsed.events == [
        {"k": "received", "id": "a", "ts": 1765000000500, "rcv": 1765000000500, "w": "taskq@w1"},
        {"k": "received", "id": "b", "ts": 1765000000500, "rcv": 1765000000500, "w": "taskq@w1"},
    ]
    bad = fold.Parsed()
    fold.parse_entry({b"r": b'["a",7,""]', b"ts": b"1765000000500"}, bad)  # ids that are none
    fold.parse_entry({b"r": b"[not json", b"ts": b"1"}, bad)
    fold.parse_entry({b"r": b'["a"]', b"ts": b"soon"}, bad)
    assert [e["id"] for e in bad.events] == ["a"] and bad.dropped == 4
