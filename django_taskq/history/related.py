"""The rows a task's detail page links to: its workflow neighbours, in bounded queries.

A task names its parent, its root (the first task of its workflow) and its
group by id; children, group members, the steps of its workflow and the
retries made of it are the rows that name *it*. Each list is read with a
LIMIT (``shown`` rows, plus one to know there are more) over an indexed
column, so a chord of ten thousand members costs the page what a chain of
three does; the page links to the full, filtered list for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q

from django_taskq.history.models import TaskRecord

#: Rows listed per relation on a detail page.
SHOWN = 20

_LIST_FIELDS = ("pk", "task_id", "task_name", "state", "dead_lettered", "sent_at")


@dataclass(frozen=True)
class Neighbours:
    """Some rows related to a task, and whether there are more than these."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False


@dataclass(frozen=True)
class Related:
    """Everything the detail page shows about a task's place among others."""

    by_id: dict[str, dict[str, Any]]  # parent, root and the original of a retry, by task id
    children: Neighbours
    group: Neighbours
    workflow: Neighbours
    retries: Neighbours

    def row(self, task_id: str) -> dict[str, Any] | None:
        return self.by_id.get(task_id) if task_id else None


def root_of(record: TaskRecord) -> str:
    """The id of the workflow's first task (the task's own id when it is the first)."""
    return str(record.root_id or record.task_id)


def _neighbours(condition: Q, exclude: str, order: str = "sent_at") -> Neighbours:
    rows = list(
        TaskRecord.objects.filter(condition)
        .exclude(task_id=exclude)
        .order_by(order, "pk")
        .values(*_LIST_FIELDS)[: SHOWN + 1]
    )
    return Neighbours(rows[:SHOWN], len(rows) > SHOWN)


def related(record: TaskRecord) -> Related:
    """Read the rows around ``record`` (at most six queries, each bounded)."""
    wanted = {i for i in (record.parent_id, record.root_id, record.retry_of) if i}
    by_id = {
        str(row["task_id"]): row
        for row in TaskRecord.objects.filter(task_id__in=wanted).values(*_LIST_FIELDS)
    }
    root = root_of(record)
    return Related(
        by_id=by_id,
        children=_neighbours(Q(parent_id=record.task_id), record.task_id),
        group=_neighbours(Q(group_id=record.group_id), record.task_id)
        if record.group_id
        else Neighbours(),
        workflow=_neighbours(Q(root_id=root) | Q(task_id=root), record.task_id),
        retries=_neighbours(Q(retry_of=record.task_id), record.task_id),
    )
