"""The task registry: task name -> Task.

Workers look task names up here; a name from a message is never imported or
evaluated. ``@shared_task`` registers at decoration time, and the app config
imports every installed app's ``tasks`` module so that all tasks are known.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from django_taskq.exceptions import NotRegistered

if TYPE_CHECKING:
    from django_taskq.task import Task


class Registry:
    """A mapping of task names to tasks."""

    def __init__(self) -> None:
        self._tasks: dict[str, Task] = {}

    def register(self, task: Task) -> Task:
        existing = self._tasks.get(task.name)
        if existing is not None and existing.run is not task.run:
            existing_module = getattr(existing.run, "__module__", "?")
            new_module = getattr(task.run, "__module__", "?")
            if (existing_module, existing.run.__qualname__) != (new_module, task.run.__qualname__):
                raise ValueError(
                    f"task name {task.name!r} is registered twice: by {existing_module}."
                    f"{existing.run.__qualname__} and by {new_module}.{task.run.__qualname__}; "
                    "give one of them another name with @shared_task(name=...)"
                )
        self._tasks[task.name] = task
        return task

    def unregister(self, name: str) -> None:
        self._tasks.pop(name, None)

    def get(self, name: str) -> Task:
        """The task called ``name``; NotRegistered if there is none."""
        try:
            return self._tasks[name]
        except KeyError:
            raise NotRegistered(
                f"task {name!r} is not registered in this process; is its tasks.py in an "
                "installed app, and is the name spelled as in @shared_task(name=...)?"
            ) from None

    def find(self, name: str) -> Task | None:
        """The task called ``name``, or None."""
        return self._tasks.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tasks

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    def names(self, include_internal: bool = False) -> list[str]:
        """Registered task names, sorted; internal ``django_taskq.*`` ones only on request."""
        return [
            name
            for name in sorted(self._tasks)
            if include_internal or not name.startswith("django_taskq.")
        ]


registry = Registry()
