"""The HTTP endpoints: run queued tasks, read a task's state and the queues', purge history.

Each view asks auth.check() first, before it reads a parameter, so a caller
who is not let in learns nothing, and an HMAC handler sees the body as sent.
Answers are JSON; an error answer is ``{"error": "..."}`` naming the
parameter and what to send instead.
"""

from __future__ import annotations

from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.conf import tasks_options
from django_taskq.endpoints import auth, burst
from django_taskq.exceptions import DecodeError

#: Fields of a result record the status/<id>/ answer carries, as stored.
RECORD_FIELDS = (
    "date_sent",
    "date_started",
    "date_done",
    "retries",
    "worker",
    "traceback",
)


class _Encoder(DjangoJSONEncoder):
    """DjangoJSONEncoder (dates, decimals, UUIDs), and ``repr`` for anything else."""

    def default(self, o: Any) -> Any:
        try:
            return super().default(o)
        except TypeError:
            return repr(o)


def _json(data: dict[str, Any], status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, encoder=_Encoder)


def _error(message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _guard(request: HttpRequest, endpoint: str) -> HttpResponse | None:
    """The refusal for ``request``, or None: the handlers let it in and its backend_name is ours."""
    refused = auth.check(request, endpoint)
    if refused is not None:
        return refused
    params = request.POST if request.method == "POST" else request.GET
    name = params.get("backend_name")
    if name is None:
        return None
    ours = [alias for alias, _ in tasks_options()]
    if name in ours or (not ours and name == "default"):
        return None
    return _error(
        f"backend_name {name!r} is not a TaskqBackend in TASKS; "
        + (f"send one of {ours}" if ours else "leave it out")
    )


def _count(params: Any, name: str, default: int) -> int | JsonResponse:
    """Parameter ``name`` as a whole number of 0 or more, or the error answer."""
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        return _error(f"{name} must be a whole number of 0 or more, not {raw!r}")
    return value


def _queues(params: Any) -> list[str] | JsonResponse:
    """``queue_name`` (repeated, or comma-separated) checked; [] for the default queue."""
    names = [q.strip() for raw in params.getlist("queue_name") for q in raw.split(",")]
    try:
        return [keys.check_queue_name(q, "queue_name") for q in names if q]
    except ValueError as exc:
        return _error(str(exc))


def _ran(outcome: burst.BurstRun) -> JsonResponse | None:
    """The error answer for a burst worker that did not run as it should; None if it did."""
    if outcome.exit_code == 0 or outcome.timed_out:
        return None
    return _json(
        {
            "error": f"taskq_worker --burst exited {outcome.exit_code}; its output ends with "
            "the reason",
            "output": outcome.output,
        },
        status=500,
    )


@csrf_exempt
@never_cache
@require_POST
def run(request: HttpRequest) -> HttpResponse:
    """POST: run what the queues hold now (``max_tasks``: at most that many; 0: all).

    Answers ``{"processed": N, "failed": N, "timed_out": bool}`` once the
    burst worker has stopped.
    """
    if (refused := _guard(request, "run")) is not None:
        return refused
    queues = _queues(request.POST)
    if isinstance(queues, JsonResponse):
        return queues
    max_tasks = _count(request.POST, "max_tasks", 0)
    if isinstance(max_tasks, JsonResponse):
        return max_tasks
    outcome = burst.run(queues, max_tasks or None)
    if (failed := _ran(outcome)) is not None:
        return failed
    return _json(
        {"processed": outcome.ended, "failed": outcome.failed, "timed_out": outcome.timed_out}
    )


@csrf_exempt
@never_cache
@require_POST
def run_one(request: HttpRequest) -> HttpResponse:
    """POST: run one queued task, if there is one.

    Answers ``{"processed": bool, "failed": bool, "timed_out": bool}``.
    """
    if (refused := _guard(request, "run_one")) is not None:
        return refused
    queues = _queues(request.POST)
    if isinstance(queues, JsonResponse):
        return queues
    outcome = burst.run(queues, 1)
    if (failed := _ran(outcome)) is not None:
        return failed
    return _json(
        {
            "processed": outcome.ended > 0,
            "failed": outcome.failed > 0,
            "timed_out": outcome.timed_out,
        }
    )


def _task(task_id: str) -> dict[str, Any] | JsonResponse | None:
    """What status/<id>/ shows of task ``task_id``: its result record; None if it has none.

    A record that cannot be read (bytes some other program stored under
    its key) is answered as a JSON error naming the key, not a traceback.
    """
    from django_taskq.result import AsyncResult

    try:
        record = AsyncResult(task_id)._record()
    except DecodeError as exc:
        return _error(str(exc), status=500)
    if record is None:
        return None
    # From the one record read: .name and .state would read a record not yet final again.
    task: dict[str, Any] = {
        "id": task_id,
        "task_name": record.get("task"),
        "state": str(record.get("status") or states.PENDING),
    }
    task.update({field: record[field] for field in RECORD_FIELDS if field in record})
    task["result"] = record.get("result")
    return task


def _no_task(task_id: str) -> JsonResponse:
    return _error(f"No task {task_id!r}: never sent, or its result expired", status=404)


@never_cache
@require_safe
def task_status(request: HttpRequest, task_id: str) -> HttpResponse:
    """GET: the state of task ``task_id`` from its result record; 404 if there is none."""
    if (refused := _guard(request, "status")) is not None:
        return refused
    task = _task(task_id)
    if isinstance(task, JsonResponse):
        return task
    return _no_task(task_id) if task is None else _json({"task": task})


@csrf_exempt
@never_cache
@require_POST
def execute(request: HttpRequest, task_id: str) -> HttpResponse:
    """POST: run queued tasks until task ``task_id`` has ended, then answer its state.

    For a push service that calls once per task (Cloud Tasks, a webhook).
    Messages are not taken out of order, so tasks queued before it run
    first; the burst worker stops as soon as it has ended. A task that
    already ended is not run again (``"processed": 0``): a push service's
    retried call is harmless. ``queue_name`` limits the queues read
    (default: every queue).
    """
    if (refused := _guard(request, "execute")) is not None:
        return refused
    queues = _queues(request.POST)
    if isinstance(queues, JsonResponse):
        return queues
    if request.POST.get("allow_retry", "").lower() == "true":
        return _error(
            "allow_retry is not supported: a task runs once per send; send it again, or use "
            "the admin's resend action on its history row"
        )
    task = _task(task_id)
    if isinstance(task, JsonResponse):
        return task
    if task is None:
        return _no_task(task_id)
    if task["state"] in states.READY_STATES:
        return _json({"task": task, "processed": 0, "failed": 0, "timed_out": False})
    if not queues:  # every registered queue (a registry member that is no queue name is skipped)
        from django_taskq.broker import queues as registry
        from django_taskq.broker.connection import get_broker

        queues = [q for q in registry.known(get_broker()) if keys.QUEUE_NAME.match(q)]
    outcome = burst.run(queues, until=task_id)
    if (failed := _ran(outcome)) is not None:
        return failed
    after = _task(task_id)
    return _json(
        {
            "task": after if isinstance(after, dict) else task,
            "processed": outcome.ended,
            "failed": outcome.failed,
            "timed_out": outcome.timed_out,
        }
    )


@never_cache
@require_safe
def queue_status(request: HttpRequest) -> HttpResponse:
    """GET: live counts of every queue, or of those named by ``queue_name``."""
    if (refused := _guard(request, "status")) is not None:
        return refused
    queues = _queues(request.GET)
    if isinstance(queues, JsonResponse):
        return queues
    from django_taskq.monitor.queues import queue_stats

    stats = queue_stats(queues or None)
    return _json(
        {
            "queues": [
                {
                    "name": s.name,
                    "ready": s.ready,
                    "in_flight": s.in_flight,
                    "delayed": s.delayed,
                    "dead": s.dead,
                    "oldest_age": s.oldest_age,
                    "next_eta": s.next_eta,
                }
                for s in stats
            ]
        }
    )


@csrf_exempt
@never_cache
@require_POST
def purge(request: HttpRequest) -> HttpResponse:
    """POST: delete the history of tasks that ended over ``days`` days ago (default 7).

    Results in Redis expire by themselves (TASKQ_RESULT_EXPIRES); this
    clears the task history table on demand.
    """
    if (refused := _guard(request, "purge")) is not None:
        return refused
    days = _count(request.POST, "days", 7)
    if isinstance(days, JsonResponse):
        return days
    from django_taskq.history.retention import purge_finished

    return _json({"deleted": purge_finished(days)})


__all__ = ["execute", "purge", "queue_status", "run", "run_one", "task_status"]
