"""Signatures and workflows without a worker: building, JSON form, freezing, eager mode."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import (
    AsyncResult,
    EagerResult,
    GroupResult,
    Signature,
    chain,
    chord,
    chunks,
    group,
    maybe_signature,
    signature,
    states,
    xmap,
    xstarmap,
)
from django_taskq.broker import keys
from django_taskq.exceptions import ChordError
from django_taskq.messages import Envelope
from tests.testapp.tasks import add, mul, wf_fail, wf_on_error_new, xsum


@pytest.fixture
def eager() -> Iterator[None]:
    with override_settings(TASKQ_TASK_ALWAYS_EAGER=True):
        yield


# -- building ----------------------------------------------------------------
def test_signature_fields_and_partials() -> None:
    sig = add.s(2)
    assert isinstance(sig, Signature) and isinstance(sig, dict)
    assert sig.task == "tests.testapp.tasks.add" and sig.args == (2,) and not sig.immutable
    assert add.si(2, 2).immutable
    assert sig.clone((4,)).args == (4, 2)  # new args are prepended
    assert add.s(x=1).clone(kwargs={"y": 2}).kwargs == {"x": 1, "y": 2}
    assert add.si(2, 2).clone((9,)).args == (2, 2)  # immutable ignores new args
    assert sig(4) == 6  # calling a signature runs the function inline
    assert repr(add.s(2, y=3)) == "tests.testapp.tasks.add(2, y=3)"


def test_set_stores_options_and_rejects_unknown_ones() -> None:
    sig = add.s(1, 1).set(queue="other", countdown=5)
    assert sig.options == {"queue": "other", "countdown": 5}
    with pytest.raises(TypeError, match="unknown option.*qeue"):
        add.s(1, 1).set(qeue="other")


def test_clone_is_deep() -> None:
    sig = add.s(1, 1)
    sig.link(mul.s(2))
    copy = sig.clone()
    copy.options["link"][0].set(queue="elsewhere")
    assert "queue" not in sig.options["link"][0].options


def test_json_round_trip_of_every_kind() -> None:
    workflow = chain(
        add.s(1, 1).set(queue="q", priority=7),
        group(add.s(1), mul.s(2)),
        chord([add.s(1, 2), chain(add.s(3, 4), mul.s(2))], xsum.s()),
        xsum.map([range(3)]),
        add.starmap(zip([1, 2], [3, 4], strict=True)),
    )
    workflow.link_error(wf_on_error_new.s("k"))
    data = json.loads(json.dumps(workflow))
    rebuilt = signature(data)
    assert type(rebuilt) is chain
    assert [type(t) for t in rebuilt.tasks] == [Signature, group, chord, xmap, xstarmap]
    assert rebuilt.to_dict() == workflow.to_dict() == data
    assert json.loads(json.dumps(rebuilt)) == data
    assert rebuilt.tasks[0].options["queue"] == "q"
    assert type(rebuilt.tasks[2].header) is group
    assert type(rebuilt.tasks[2].body) is Signature
    assert rebuilt.tasks[3].kwargs["it"] == [[0, 1, 2]]
    assert rebuilt.tasks[4].kwargs["it"] == [[1, 3], [2, 4]]


def test_maybe_signature() -> None:
    assert maybe_signature(None) is None
    sig = add.s(1, 1)
    assert maybe_signature(sig) is sig
    assert maybe_signature(dict(sig)) == sig
    with pytest.raises(TypeError):
        maybe_signature(42)


def test_pipe_operator_builds_flat_chains_and_chords() -> None:
    built = add.s(1, 1) | mul.s(2) | (add.s(3) | mul.s(4))
    assert type(built) is chain and len(built.tasks) == 4
    assert type(group(add.s(1, 1)) | xsum.s()) is chord


def test_generators_ranges_and_zip_are_materialised() -> None:
    g = group(add.s(i, i) for i in range(3))
    assert len(g.tasks) == 3
    assert chunks(add.s(), zip(range(5), range(5), strict=True), 2).group().tasks[2].kwargs[
        "it"
    ] == [[4, 4]]
    assert xsum.s(range(3)).args == ([0, 1, 2],)


# -- freezing ----------------------------------------------------------------
def test_freeze_gives_ids_and_parents() -> None:
    workflow = chain(add.s(1, 1), mul.s(2), add.s(3))
    result = workflow.freeze()
    assert isinstance(result, AsyncResult)
    assert [t.id for t in workflow.tasks] == [
        result.parent.parent.id,
        result.parent.id,
        result.id,
    ]


def test_group_followed_by_a_step_is_frozen_as_a_chord() -> None:
    workflow = chain(add.s(1, 1), group(add.s(1), add.s(2)), xsum.s(), mul.s(2))
    result = workflow.freeze()
    assert [type(t) for t in workflow.tasks] == [Signature, chord]
    body = workflow.tasks[1].body
    assert type(body) is chain and result.id == body.tasks[-1].id
    # the chord's result is its body's; the body's first step has the header as parent
    assert result.parent.id == body.tasks[0].id
    header_result = result.parent.parent
    assert isinstance(header_result, GroupResult) and len(header_result) == 2
    assert header_result.parent.id == workflow.tasks[0].id


def test_chord_members_carry_the_chord_and_their_index() -> None:
    workflow = chord([add.s(1, 1), chain(add.s(2, 2), mul.s(2))], xsum.s())
    result = workflow.freeze()
    chord_id = workflow.header.options["task_id"]
    first, second_chain = workflow.header.tasks
    assert first.options["chord"]["id"] == chord_id and first.options["group_index"] == 0
    assert first.options["chord"]["size"] == 2
    assert first.options["chord"]["body"]["options"]["task_id"] == result.id
    # in a chain member, only the last step is counted
    assert "chord" not in second_chain.tasks[0].options
    assert second_chain.tasks[1].options["group_index"] == 1


def test_same_signature_twice_in_a_group_gets_two_ids() -> None:
    sig = add.s(1, 1)
    result = group([sig, sig]).freeze()
    assert isinstance(result, GroupResult)
    assert result.results[0].id != result.results[1].id


# -- sending -------------------------------------------------------------------
def _messages(broker: Any) -> list[Envelope]:
    entries = broker.xrange(keys.stream("default", 5))
    return [Envelope.decode(fields[b"b"]) for _, fields in entries]


def test_group_is_sent_in_order_with_group_ids(broker: Any) -> None:
    result = group(add.s(i, i) for i in range(4))()
    sent = _messages(broker)
    assert [m.id for m in sent] == [r.id for r in result.results]
    assert {m.group_id for m in sent} == {result.id}
    assert [m.group_index for m in sent] == [0, 1, 2, 3]


def test_chain_sends_its_first_step_with_the_rest_as_link(broker: Any) -> None:
    result = chain(add.s(1, 1), mul.s(2), add.s(3))()
    (first,) = _messages(broker)
    assert first.task == "tests.testapp.tasks.add" and first.args == [1, 1]
    (rest,) = first.link
    assert rest["subtask_type"] == "chain"
    assert rest["kwargs"]["tasks"][-1]["options"]["task_id"] == result.id


def test_chord_sends_only_its_header(broker: Any) -> None:
    chord([add.s(1, 1), add.s(2, 2)], xsum.s())()
    sent = _messages(broker)
    assert [m.args for m in sent] == [[1, 1], [2, 2]]
    assert all(m.chord and m.chord["size"] == 2 for m in sent)


def test_options_apply_to_every_member(broker: Any) -> None:
    group(add.s(1, 1), add.s(2, 2)).apply_async(queue="wf-other")
    assert len(broker.xrange(keys.stream("wf-other", 5))) == 2


# -- eager mode -----------------------------------------------------------------
@pytest.mark.usefixtures("eager")
def test_eager_examples() -> None:
    assert chain(add.s(2, 2), add.s(4), add.s(8))().get() == 16
    assert (add.s(4, 16) | mul.s(2) | (add.s(4) | mul.s(8)))().get() == 352
    assert group(add.s(i, i) for i in range(10))().get(timeout=5) == list(range(0, 20, 2))
    assert chord((add.s(i, i) for i in range(10)), xsum.s())().get() == 90
    assert ~xsum.map([range(10), range(100)]) == [45, 4950]
    assert ~add.starmap(zip(range(10), range(10), strict=True)) == list(range(0, 20, 2))
    assert add.chunks(zip(range(100), range(100), strict=True), 10)().get() == [
        [2 * (10 * c + i) for i in range(10)] for c in range(10)
    ]
    assert chord([], xsum.s())().get() == 0


@pytest.mark.usefixtures("eager")
def test_eager_chain_failure() -> None:
    result = chain(add.s(1, 1), wf_fail.s(), add.s(3))()
    assert isinstance(result, EagerResult) and result.state == states.FAILURE
    assert isinstance(result.result, ValueError)
    assert result.parent.state == states.FAILURE
    assert result.parent.parent.get() == 2


@pytest.mark.usefixtures("eager")
def test_eager_chord_failure_is_a_chord_error() -> None:
    result = chord([add.s(1, 1), wf_fail.s()], xsum.s())()
    assert result.state == states.FAILURE
    failed_id = result.parent.results[1].id
    assert isinstance(result.result, ChordError)
    assert f"Dependency {failed_id} raised ValueError" in str(result.result)
    with override_settings(TASKQ_TASK_EAGER_PROPAGATES=True), pytest.raises(ChordError):
        chord([wf_fail.s()], xsum.s())()


@pytest.mark.usefixtures("eager")
def test_eager_link_and_new_style_errback(broker: Any) -> None:
    add.apply_async((2, 2), link=mul.s(3))
    wf_fail.apply_async((5,), link_error=wf_on_error_new.s("wf:eager-errors"))
    (raw,) = broker.lrange("wf:eager-errors", 0, -1)
    assert raw.decode().endswith("|ValueError: wf_fail(5,)|True")


def test_group_result_save_restore_and_ttl(broker: Any) -> None:
    nested = GroupResult("inner", [AsyncResult("b"), AsyncResult("c")])
    saved = GroupResult("outer", [AsyncResult("a", task_name="t.a"), nested]).save()
    assert 0 < broker.pttl(keys.group_meta("outer")) <= 86400 * 1000
    restored = GroupResult.restore("outer")
    assert restored is not None and restored == saved
    assert isinstance(restored.results[1], GroupResult)
    assert [r.id for r in restored.results[1].results] == ["b", "c"]
    assert restored.results[0].task_name == "t.a"
    restored.delete()
    assert GroupResult.restore("outer") is None


def test_group_skew_spreads_the_members_starts(broker: Any) -> None:
    g = group(add.s(i, i) for i in range(4)).skew(start=1, step=10)
    assert [t.options["countdown"] for t in g.tasks] == [1.0, 11.0, 21.0, 31.0]
    capped = group(add.s(i, i) for i in range(4)).skew(start=0, stop=15, step=10)
    assert [t.options["countdown"] for t in capped.tasks] == [0.0, 10.0, 10.0, 10.0]
    result = g.apply_async()
    due = sorted(
        score for _, score in broker.zrange(keys.delayed("default"), 0, -1, withscores=True)
    )
    assert len(due) == 4 == len(result.results)
    assert [round((b - a) / 1000) for a, b in itertools.pairwise(due)] == [10, 10, 10]
