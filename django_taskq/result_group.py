"""GroupResult: the results of a group's tasks, in the order they were given.

A GroupResult holds AsyncResults (or nested GroupResults) by id; it does not
need Redis to exist until ``save()``, which stores the member ids under the
group id (with the TASKQ_RESULT_EXPIRES TTL) so ``GroupResult.restore(id)``
can rebuild it in another process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from django_taskq.broker import errors, keys
from django_taskq.broker.connection import get_backend
from django_taskq.conf import taskq_settings
from django_taskq.exceptions import DecodeError, TimeoutError
from django_taskq.messages import dumps, loads
from django_taskq.result import AsyncResult


class GroupResult:
    """The results of a group, in order: ``get()`` returns their values as a list."""

    def __init__(
        self,
        id: str | None = None,
        results: list[AsyncResult | GroupResult] | None = None,
        parent: AsyncResult | GroupResult | None = None,
    ) -> None:
        self.id = id
        self.results: list[AsyncResult | GroupResult] = list(results or [])
        self.parent = parent

    def __repr__(self) -> str:
        return f"<GroupResult: {self.id} [{', '.join(str(r.id) for r in self.results)}]>"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, GroupResult):
            return self.id == other.id and self.results == other.results
        if isinstance(other, str):
            return self.id == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __len__(self) -> int:
        return len(self.results)

    def __iter__(self) -> Iterator[AsyncResult | GroupResult]:
        return iter(self.results)

    def __getitem__(self, index: int) -> AsyncResult | GroupResult:
        return self.results[index]

    @property
    def children(self) -> list[AsyncResult | GroupResult]:
        return self.results

    # -- state ---------------------------------------------------------------
    def ready(self) -> bool:
        """True when every member has finished (successfully or not)."""
        return all(r.ready() for r in self.results)

    def successful(self) -> bool:
        """True when every member succeeded."""
        return all(r.successful() for r in self.results)

    def failed(self) -> bool:
        """True when any member failed."""
        return any(r.failed() for r in self.results)

    def waiting(self) -> bool:
        """True when any member has not finished yet."""
        return not self.ready()

    def completed_count(self) -> int:
        """How many members succeeded."""
        return sum(1 for r in self.results if r.successful())

    # -- waiting ---------------------------------------------------------------
    def get(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
    ) -> list[Any]:
        """Wait for every member; return their results in order.

        With ``propagate`` the first failed member's exception is raised;
        ``timeout`` bounds the whole wait, not each member.
        """
        from django_taskq.result import assert_not_in_task, check_timeout

        check_timeout(timeout, f"group {self.id}")
        if disable_sync_subtasks:
            assert_not_in_task(f"group {self.id}")
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0 and not result.ready():
                raise TimeoutError(f"group {self.id} did not finish within {timeout}s")
            values.append(
                result.get(timeout=remaining, propagate=propagate, disable_sync_subtasks=False)
            )
        return values

    join = get

    async def aget(
        self,
        timeout: float | None = None,
        propagate: bool = True,
        interval: float | None = None,
        disable_sync_subtasks: bool = True,
    ) -> list[Any]:
        """``get()`` for async code: each member awaited in turn with ``AsyncResult.aget()``.

        The same arguments, result and errors as ``get()``; no thread, no polling.
        """
        from django_taskq.result import assert_not_in_task, check_timeout

        check_timeout(timeout, f"group {self.id}")
        if disable_sync_subtasks:
            assert_not_in_task(f"group {self.id}")
        deadline = None if timeout is None else time.monotonic() + timeout
        values = []
        for result in self.results:
            # Past the deadline a member is still read once (a finished one is returned).
            left = None if deadline is None else max(deadline - time.monotonic(), 0.001)
            try:
                value = await result.aget(
                    timeout=left, propagate=propagate, disable_sync_subtasks=False
                )
            except TimeoutError as exc:
                raise TimeoutError(f"group {self.id} did not finish within {timeout}s") from exc
            values.append(value)
        return values

    ajoin = aget

    # -- storing -------------------------------------------------------------
    def as_dict(self) -> dict[str, Any]:
        """The member ids as JSON data (nested groups included)."""
        return {"id": self.id, "results": [_member_data(r) for r in self.results]}

    def save(self) -> GroupResult:
        """Store the member ids so ``GroupResult.restore(id)`` works elsewhere."""
        if not self.id:
            raise ValueError("cannot save a GroupResult without an id")
        ttl = int(float(taskq_settings.RESULT_EXPIRES) * 1000)
        with errors.translating_errors(f"save group {self.id}", uses="results"):
            get_backend().set(keys.group_meta(self.id), dumps(self.as_dict()), px=ttl)
        return self

    @classmethod
    def restore(cls, id: str) -> GroupResult | None:
        """The GroupResult saved under ``id``, or None when there is none (or it expired)."""
        with errors.translating_errors(f"restore group {id}", uses="results"):
            raw = get_backend().get(keys.group_meta(id))
        if raw is None:
            return None
        return decode_group(id, raw)

    def delete(self) -> None:
        """Remove what ``save()`` stored."""
        if self.id:
            with errors.translating_errors(f"delete group {self.id}", uses="results"):
                get_backend().delete(keys.group_meta(self.id))

    def forget(self) -> None:
        """Remove the stored results of every member, and the saved group."""
        for result in self.results:
            result.forget()
        self.delete()

    def revoke(self, terminate: bool = False, signal: str = "SIGTERM") -> None:
        """Revoke every member."""
        for result in self.results:
            result.revoke(terminate=terminate, signal=signal)


def _member_data(result: AsyncResult | GroupResult) -> dict[str, Any]:
    if isinstance(result, GroupResult):
        return {"group": result.as_dict()}
    return {"id": result.id, "task": result.task_name}


def decode_group(group_id: str, raw: bytes | str) -> GroupResult:
    """The GroupResult saved as ``raw``, or DecodeError naming the group and key.

    As ``result.decode_record()`` does for a task's record: whatever bytes
    are under the key, ``restore()`` gives one clear error, not a KeyError
    or TypeError from deep inside, and says how to remove them.
    """
    try:
        return _from_data(loads(raw))
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as exc:
        raise DecodeError(
            f"the saved group {group_id!r} (key {keys.group_meta(group_id)!r}) is not a group "
            f"django_taskq saved ({type(exc).__name__}: {exc}); "
            "GroupResult(id, []).delete() removes it"
        ) from None


def _from_data(data: dict[str, Any]) -> GroupResult:
    results: list[AsyncResult | GroupResult] = []
    for item in data["results"] or []:
        if "group" in item:
            results.append(_from_data(item["group"]))
        else:
            if not isinstance(item["id"], str):
                raise TypeError(f"a member's id is {item['id']!r}, not a string")
            results.append(AsyncResult(item["id"], task_name=item.get("task")))
    return GroupResult(data.get("id"), results)
