"""TASKQ_WORKER_ASYNC_CONCURRENCY and --async-concurrency: checked, each error naming its source;
and the current request of concurrent asyncio tasks (a context variable, request.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from django_taskq.checks import check_settings
from django_taskq.conf import check_async_concurrency, taskq_settings
from django_taskq.exceptions import ImproperlyConfiguredTaskq
from django_taskq.request import Request, activated, current_request


@pytest.mark.parametrize("value", [0, -2, 1.5, "4", True, None])
def test_a_bad_async_concurrency_names_the_setting(value: Any) -> None:
    with override_settings(TASKQ_WORKER_ASYNC_CONCURRENCY=value):
        with pytest.raises(ImproperlyConfiguredTaskq, match="TASKQ_WORKER_ASYNC_CONCURRENCY must"):
            taskq_settings.async_concurrency  # noqa: B018 - the read checks it
        errors = [m for m in check_settings() if "ASYNC_CONCURRENCY" in m.msg]
        assert [m.id for m in errors] == ["taskq.E003"]


def test_the_default_runs_async_tasks_one_at_a_time() -> None:
    assert taskq_settings.async_concurrency == 1
    with override_settings(TASKQ_WORKER_ASYNC_CONCURRENCY=8):
        assert taskq_settings.async_concurrency == 8
        assert not [m for m in check_settings() if "ASYNC_CONCURRENCY" in m.msg]
    assert check_async_concurrency(3, "x") == 3


def test_the_worker_flag_and_the_setting_are_refused_before_it_starts() -> None:
    with pytest.raises(CommandError, match="taskq_worker --async-concurrency must .* not 0"):
        call_command("taskq_worker", "--async-concurrency", "0")
    bad = override_settings(TASKQ_WORKER_ASYNC_CONCURRENCY="many")
    refused = pytest.raises(CommandError, match="TASKQ_WORKER_ASYNC_CONCURRENCY must .* 'many'")
    with bad, refused:
        call_command("taskq_worker")


def test_concurrent_asyncio_tasks_each_see_their_own_request() -> None:
    """What a consumer's async lane relies on: asyncio tasks copy the context."""

    async def run(task_id: str, gate: asyncio.Event, seen: list[tuple[str, str | None]]) -> None:
        with activated(Request(id=task_id, task="t")):
            await gate.wait()  # the others push theirs meanwhile
            current = current_request()
            seen.append((task_id, current.id if current else None))

    async def main() -> list[tuple[str, str | None]]:
        gate, seen = asyncio.Event(), []
        jobs = [asyncio.create_task(run(f"id-{i}", gate, seen)) for i in range(3)]
        await asyncio.sleep(0)
        gate.set()
        await asyncio.gather(*jobs)
        assert current_request() is None  # theirs never leaked into the creator's context
        return seen

    seen = asyncio.run(main())
    assert sorted(seen) == [("id-0", "id-0"), ("id-1", "id-1"), ("id-2", "id-2")]
