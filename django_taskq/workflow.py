"""Sending workflows, and running them eagerly (the producer side of canvas).

``send`` freezes a signature (chain, group, chord) with new ids and publishes
the messages that start it; what a worker does when such a task finishes is
in ``django_taskq.followups``. The eager helpers give a workflow that runs
inline (``apply()``, eager mode) the results a worker would have stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django_taskq import states
from django_taskq.exceptions import ChordError, TaskRevokedError
from django_taskq.followups import FollowUps

if TYPE_CHECKING:
    from django_taskq.signatures import Result, Signature


def send(
    sig: Signature,
    args: Iterable[Any] | None,
    kwargs: dict[str, Any] | None,
    options: dict[str, Any],
) -> Result:
    """Freeze a copy of ``sig`` with new ids and publish the messages that start it."""
    from django_taskq.broker.publish import publish, publish_deadline, publish_many
    from django_taskq.canvas import Signature, expanded, random_ids

    sig = expanded(sig).clone()
    if options:
        if type(sig) is Signature:
            sig.set(**options)
        else:
            sig._push_options(options)
    result = sig._freeze(random_ids(), None)
    envelopes = sig._envelopes(args, kwargs, None, None)
    with publish_deadline():
        if len(envelopes) == 1:
            publish(
                envelopes[0],
                serializer=sig.options.get("serializer"),
                compression=sig.options.get("compression"),
            )
        elif envelopes:
            publish_many(envelopes)
    return result


def outcome_of(result: Result) -> tuple[bool, Any, BaseException | None]:
    """(succeeded, value, exception) of an eager result or group of them."""
    from django_taskq.result_group import GroupResult

    if isinstance(result, GroupResult):
        values = []
        for member in result.results:
            ok, value, exc = outcome_of(member)
            if not ok:
                return False, None, exc
            values.append(value)
        return True, values, None
    if result.state == states.SUCCESS:
        return True, result.result, None
    exc = result.result if isinstance(result.result, BaseException) else None
    return False, None, exc or TaskRevokedError(f"task {result.id} did not succeed")


def eager_failed(sig: Signature, exc: BaseException | None, parent: Result | None) -> Result:
    """The failed result of a frozen workflow that will not run (eager mode)."""
    from django_taskq.canvas import chain, chord, group
    from django_taskq.result import EagerResult
    from django_taskq.result_group import GroupResult

    result: Result
    if isinstance(sig, chain):
        result = eager_failed(sig.tasks[-1], exc, None)
    elif isinstance(sig, chord):
        result = eager_failed(sig._need_body(), exc, None)
    elif isinstance(sig, group):
        result = GroupResult(
            sig.options.get("task_id"), [eager_failed(t, exc, None) for t in sig.tasks]
        )
    else:
        result = EagerResult(str(sig.id), states.FAILURE, None, None, sig.task, exception=exc)
    if parent is not None:
        result.parent = parent
    return result


def eager_chord_failed(body: Signature, error: ChordError) -> Result:
    """Fail a chord body in eager mode: its errbacks run, its result fails with ``error``."""
    plan = FollowUps(eager=True)
    plan.fail(body, error, None, errbacks=True, parent_id=None, root_id=str(body.id or ""))
    return eager_failed(body, error, None)
