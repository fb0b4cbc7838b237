"""The workflow examples of docs/workflows.md, run by a real worker subprocess.

Each test gets its own prefork worker (two children), started on an empty Redis.
"""

from __future__ import annotations

from typing import Any

import pytest

from django_taskq import AsyncResult, GroupResult, chain, chord, group, signature, states
from django_taskq.broker.connection import get_broker
from django_taskq.exceptions import ChordError
from tests.testapp.tasks import add, mul, wf_fail, wf_on_error, wf_on_error_new, xsum

pytestmark = pytest.mark.e2e

T = 8  # seconds any one result may take (below the socket timeout)


@pytest.fixture(autouse=True)
def _worker(start_worker: Any) -> None:
    start_worker("-P", "prefork", "-c", "2")


def test_signatures() -> None:
    assert add.s(2, 2).delay().get(timeout=T) == 4
    assert add.si(2, 2).apply_async((100,)).get(timeout=T) == 4  # immutable ignores new args
    assert add.s(2).delay(4).get(timeout=T) == 6  # partial: 4 + 2


def test_chain_of_three_is_16() -> None:
    result = chain(add.s(2, 2), add.s(4), add.s(8))()
    assert result.get(timeout=T) == 16
    # parents walk back, in memory and from the stored records
    assert result.parent.get(timeout=T) == 8
    assert result.parent.parent.get(timeout=T) == 4
    assert result.parent.parent.parent is None
    stored = AsyncResult(result.id)
    assert stored.parent.id == result.parent.id
    assert stored.parent.parent.id == result.parent.parent.id


def test_pipe_operator_with_nested_chain_is_352() -> None:
    assert (add.s(4, 16) | mul.s(2) | (add.s(4) | mul.s(8)))().get(timeout=T) == 352


def test_group_results_in_order() -> None:
    result = group(add.s(i, i) for i in range(10))()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=T) == [0, 2, 4, 6, 8, 10, 12, 14, 16, 18]
    assert result.ready() and result.successful() and not result.failed()
    assert result.completed_count() == 10


def test_chord_sum_is_90() -> None:
    assert chord((add.s(i, i) for i in range(10)), xsum.s())().get(timeout=T) == 90


def test_map_and_starmap() -> None:
    assert ~xsum.map([range(10), range(100)]) == [45, 4950]
    assert ~add.starmap(zip(range(10), range(10), strict=True)) == [
        0,
        2,
        4,
        6,
        8,
        10,
        12,
        14,
        16,
        18,
    ]


def test_chunks_give_ten_lists_of_ten_sums() -> None:
    result = add.chunks(zip(range(100), range(100), strict=True), 10)()
    assert result.get(timeout=T) == [[2 * (10 * c + i) for i in range(10)] for c in range(10)]


def test_link_gets_the_result() -> None:
    result = add.apply_async((2, 2), link=mul.s(3).set(task_id="linked-mul"))
    assert result.get(timeout=T) == 4
    linked = AsyncResult("linked-mul")
    assert linked.get(timeout=T) == 12
    assert linked.parent.id == result.id


def test_old_style_errback_gets_failed_task_id_and_can_read_the_exception() -> None:
    key = "wf:errors"
    result = wf_fail.apply_async((1,), link_error=wf_on_error.s(key))
    with pytest.raises(ValueError, match=r"wf_fail\(1,\)"):
        result.get(timeout=T)
    _, raw = get_broker().blpop([key], timeout=T)  # type: ignore[misc]
    assert raw.decode() == f"{result.id}|ValueError: wf_fail(1,)"


def test_new_style_errback_gets_request_exception_and_traceback() -> None:
    key = "wf:errors:new"
    result = wf_fail.apply_async((2,), link_error=wf_on_error_new.s(key))
    with pytest.raises(ValueError):
        result.get(timeout=T)
    _, raw = get_broker().blpop([key], timeout=T)  # type: ignore[misc]
    assert raw.decode() == f"{result.id}|ValueError: wf_fail(2,)|True"


def test_chain_failure_stops_the_chain_and_runs_only_the_failing_steps_errback() -> None:
    key = "wf:chain-errors"
    workflow = chain(add.s(1, 1), wf_fail.s(), add.s(3), mul.s(2))
    workflow.link_error(wf_on_error.s(key))
    result = workflow()
    with pytest.raises(ValueError, match=r"wf_fail\(2,\)"):
        result.get(timeout=T)
    failing = result.parent.parent
    assert failing.state == states.FAILURE
    assert result.parent.state == states.FAILURE  # add.s(3) never ran
    assert failing.parent.get(timeout=T) == 2
    _, raw = get_broker().blpop([key], timeout=T)  # type: ignore[misc]
    assert raw.decode() == f"{failing.id}|ValueError: wf_fail(2,)"
    assert get_broker().llen(key) == 0  # one errback call, from the failing step only


def test_chord_with_a_failed_header_task_fails_with_chord_error() -> None:
    key = "wf:chord-errors"
    header = [add.s(1, 1), wf_fail.s(7), add.s(2, 2)]
    body = xsum.s().on_error(wf_on_error.s(key))
    result = chord(header, body)()
    failed_id = result.parent.results[1].id
    with pytest.raises(ChordError, match=f"Dependency {failed_id} raised ValueError"):
        result.get(timeout=T)
    _, raw = get_broker().blpop([key], timeout=T)  # type: ignore[misc]
    assert raw.decode().startswith(f"{result.id}|ChordError: Dependency {failed_id}")


def test_empty_chord_calls_the_body_with_an_empty_list() -> None:
    assert chord([], xsum.s())().get(timeout=T) == 0


def test_group_inside_a_chain() -> None:
    result = chain(add.s(1, 1), group(add.s(1), add.s(2)))()
    assert isinstance(result, GroupResult)
    assert result.get(timeout=T) == [3, 4]


def test_chain_inside_a_group() -> None:
    result = group(chain(add.s(1, 1), mul.s(10)), add.s(5, 5))()
    assert result.get(timeout=T) == [20, 10]


def test_group_followed_by_a_task_in_a_chain_becomes_a_chord() -> None:
    result = chain(add.s(1, 1), group(add.s(1), mul.s(3)), xsum.s())()
    assert result.get(timeout=T) == 3 + 6


def test_chord_inside_a_chain() -> None:
    result = chain(add.s(1, 1), chord([add.s(1), add.s(2)], xsum.s()), mul.s(10))()
    assert result.get(timeout=T) == (3 + 4) * 10


def test_chord_whose_header_contains_chains_and_a_chord() -> None:
    header = [
        chain(add.s(1, 1), mul.s(2)),
        chain(add.s(2, 2), mul.s(3)),
        chord([add.s(1, 1), add.s(2, 2)], xsum.s()),
        chain(add.s(1, 1), group(add.s(1), add.s(2))),
    ]
    result = chord(header, signature("tests.testapp.tasks.echo"))()
    assert result.get(timeout=T) == [4, 12, 6, [3, 4]]


def test_chain_whose_header_member_fails_upstream_fails_the_chord() -> None:
    header = [chain(add.s(1, 1), wf_fail.s(), add.s(1)), add.s(1, 1)]
    result = chord(header, xsum.s())()
    with pytest.raises(ChordError, match="raised ValueError"):
        result.get(timeout=T)


def test_group_result_save_and_restore() -> None:
    result = group(add.s(i, 1) for i in range(3))()
    result.save()
    restored = GroupResult.restore(result.id or "")
    assert restored is not None
    assert [r.id for r in restored.results] == [r.id for r in result.results]
    assert restored.get(timeout=T) == [1, 2, 3]
    assert GroupResult.restore("no-such-group") is None
