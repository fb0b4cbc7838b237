"""Tasks the test suite runs in real worker subprocesses."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import redis

from django_taskq import Task, get_task_logger, shared_task
from django_taskq.exceptions import SoftTimeLimitExceeded

_clients: dict[tuple[str, int], redis.Redis] = {}


def _redis() -> redis.Redis:
    """A client of the test session's Redis, whatever its topology (one per process)."""
    from django_taskq.broker.connection import client_for

    url = os.environ["TASKQ_BROKER_URL"]
    key = (url, os.getpid())
    if key not in _clients:
        _clients[key] = client_for(url)
    return _clients[key]


@shared_task
def add(x: int, y: int) -> int:
    return x + y


@shared_task
def echo(value: Any) -> Any:
    return value


@shared_task
def reject_with(reason: str) -> None:
    """Refuse the message for good (dead-lettered) with ``reason``."""
    from django_taskq.exceptions import Reject

    raise Reject(reason)


@shared_task
def file_name_of(raw: list[int]) -> str:
    """The name os.listdir() gives a file whose name is the bytes ``raw`` (surrogateescape)."""
    return os.fsdecode(bytes(raw))


@shared_task
def fail(message: str = "boom") -> None:
    raise ValueError(message)


@shared_task
def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


@shared_task
def record(key: str, value: Any) -> Any:
    """Append ``value`` to the Redis list ``key`` (to observe order and counts)."""
    _redis().rpush(key, str(value))
    return value


@shared_task
def record_slow(key: str, value: Any, seconds: float) -> Any:
    """Record the start, sleep, then record the end (to observe redelivery)."""
    _redis().rpush(key, f"start:{value}")
    time.sleep(seconds)
    _redis().rpush(key, f"end:{value}")
    return value


@shared_task(bind=True, max_retries=3, default_retry_delay=0.2)
def flaky(self: Any, key: str, failures: int) -> int:
    """Fail ``failures`` times (counted in Redis), then succeed."""
    n = int(_redis().incr(key))
    if n <= failures:
        raise self.retry(exc=RuntimeError(f"attempt {n} failed"))
    return n


@shared_task(
    bind=True,
    autoretry_for=(ConnectionError,),
    retry_backoff=True,
    retry_backoff_max=1,
    retry_jitter=False,
    max_retries=2,
)
def auto_flaky(self: Any, key: str) -> int:
    _redis().rpush(key, f"{time.time()}")
    raise ConnectionError("still down")


@shared_task(soft_time_limit=0.5)
def soft_limited(key: str) -> str:
    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        _redis().set(key, "cleaned up")
        raise
    return "not reached"


@shared_task(time_limit=1)
def hard_limited() -> str:
    time.sleep(30)
    return "not reached"


@shared_task(bind=True, track_started=True)
def progress(self: Any, steps: int, key: str) -> int:
    for i in range(steps):
        self.update_state(state="PROGRESS", meta={"done": i + 1, "total": steps})
        _redis().blpop([key], timeout=5)
    return steps


@shared_task
def routed_task(value: Any) -> Any:
    return value


@shared_task
def pid() -> int:
    return os.getpid()


@shared_task
def crash(key: str) -> None:
    """Kill the process running it (SIGKILL), every time, after recording the attempt."""
    _redis().incr(key)
    os.kill(os.getpid(), 9)


@shared_task
def unencodable_result() -> Any:
    return object()


@shared_task(rate_limit="5/s")
def limited(key: str) -> None:
    _redis().rpush(key, f"{time.time()}")


@shared_task
def make_user(username: str) -> list[Any]:
    """Use the ORM inside a worker: create a row, return every username."""
    from django.contrib.auth.models import User

    User.objects.create(username=username)
    return sorted(User.objects.values_list("username", flat=True))


# --- workflows (tests/workflows) ---------------------------------------------
@shared_task
def mul(x: int, y: int) -> int:
    return x * y


@shared_task
def xsum(numbers: list[int]) -> int:
    return sum(numbers)


@shared_task
def wf_fail(*args: Any) -> None:
    """Fail with a ValueError naming the arguments (a failing chain or chord step)."""
    raise ValueError(f"wf_fail{args!r}")


@shared_task
def wf_on_error(task_id: str, key: str) -> str:
    """Old-style errback: push the failed task's id and its stored exception to ``key``."""
    from django_taskq import AsyncResult

    exc = AsyncResult(task_id).result
    _redis().rpush(key, f"{task_id}|{type(exc).__name__}: {exc}")
    return task_id


@shared_task
def wf_on_error_new(request: Any, exc: BaseException, traceback: str | None, key: str) -> None:
    """New-style errback (called inline by the worker): record request id and exception."""
    _redis().rpush(key, f"{request.id}|{type(exc).__name__}: {exc}|{bool(traceback)}")


@shared_task(bind=True, max_retries=5, default_retry_delay=0.05)
def wf_retry_twice(self: Any, value: int, key: str) -> int:
    """Retry twice (attempts counted per value in a Redis hash), then return ``value``."""
    attempts = int(_redis().hincrby(key, str(value), 1))
    if attempts <= 2:
        raise self.retry(countdown=0.05)
    return value


@shared_task
def wf_slow(value: int, seconds: float) -> int:
    time.sleep(seconds)
    return value


@shared_task
def wf_gate(value: int, gate: str) -> int:
    """Wait until the test opens ``gate`` (RPUSH), pass the opening on, return ``value``."""
    client = _redis()
    opened = client.blpop([gate], timeout=60)
    if opened is not None:
        client.rpush(gate, opened[1])  # the next gated task passes too
    return value


@shared_task
def wf_count_calls(results: Any, key: str) -> Any:
    """Chord body that records each call (INCR ``key``) and its argument, then returns it."""
    import json

    client = _redis()
    client.incr(key)
    client.rpush(f"{key}:args", json.dumps(results))
    return results


_hoard: list[bytearray] = []


@shared_task
def hog(mebibytes: int) -> int:
    """Keep ``mebibytes`` of memory alive in this process; return its pid."""
    _hoard.append(bytearray(mebibytes * 1024 * 1024))
    return os.getpid()


@shared_task(bind=True)
def reject_once(self: Any, key: str) -> str:
    """Reject with requeue on the first delivery, succeed on the next."""
    from django_taskq.exceptions import Reject

    if int(_redis().incr(key)) == 1:
        raise Reject("not yet", requeue=True)
    return "second time"


@shared_task(bind=True, max_retries=None, default_retry_delay=0)
def retry_forever(self: Any, key: str, until: int) -> int:
    n = int(_redis().incr(key))
    if n < until:
        raise self.retry(countdown=0)
    return n


# --- signal receivers, observed by tests through Redis -------------------------
from django_taskq import signals as taskq_signals  # noqa: E402


def _on_worker_ready(sender: Any, **kwargs: Any) -> None:
    _redis().rpush("signals", f"worker_ready:{sender.hostname}")


def _on_worker_shutdown(sender: Any, **kwargs: Any) -> None:
    _redis().rpush("signals", f"worker_shutdown:{sender.hostname}")


def _on_task_revoked(sender: Any, request: Any, expired: bool, **kwargs: Any) -> None:
    _redis().rpush("signals", f"task_revoked:{request.id}:expired={expired}")


taskq_signals.worker_ready.connect(_on_worker_ready, weak=False)
taskq_signals.worker_shutdown.connect(_on_worker_shutdown, weak=False)
taskq_signals.task_revoked.connect(_on_task_revoked, weak=False)


@shared_task
def waits_inside(allow: bool) -> Any:
    """Call get() on another task from inside a task."""
    try:
        return add.delay(1, 1).get(timeout=5, disable_sync_subtasks=not allow)
    except RuntimeError as exc:
        return f"refused: {exc}"


@shared_task
def reads_ready(task_id: str) -> Any:
    """Read a finished task's result inside a task: get() is refused, .result is not."""
    from django_taskq import AsyncResult

    try:
        AsyncResult(task_id).get(timeout=5)
        refused = "not refused"
    except RuntimeError as exc:
        refused = f"refused: {exc}"
    return [refused, AsyncResult(task_id).result]


@shared_task
def exits(key: str) -> None:
    """Call sys.exit() in the task, every time, after recording the attempt."""
    import sys

    _redis().incr(key)
    sys.exit(3)


# --- revoke(terminate=True) (tests/e2e/test_terminate.py) ------------------------
@shared_task
def interruptible(key: str, seconds: float = 60) -> str:
    """Push this process's pid to ``<key>:started``, then run Python for ``seconds``.

    Pushes "swallowed" to ``key`` if an ``except Exception`` caught the
    termination, "finished" if it ran to its end, and "cleanup" from its
    ``finally`` in every case.
    """
    client = _redis()
    try:
        # Inside the try: the test may terminate the task while this call
        # still reads its reply.
        client.rpush(f"{key}:started", os.getpid())
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(0.01)
        client.rpush(key, "finished")
    except Exception:
        client.rpush(key, "swallowed")
    finally:
        client.rpush(key, "cleanup")
    return "finished"


@shared_task
def deaf(key: str, seconds: float = 60) -> int:
    """Ignore SIGTERM in this whole process, push the pid to ``<key>:started``, then sleep.

    Only for a prefork child, which is killed in the end: a signal blocked in
    one thread still reaches another, and an exception swallowed in a loop
    can land between its ``try`` blocks, so ignoring the signal is the only
    way to be truly deaf to it.
    """
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _redis().rpush(f"{key}:started", os.getpid())
    time.sleep(seconds)
    return os.getpid()


# --- remote control and ops commands (tests/ops) --------------------------------
@shared_task
def gated(key: str, seconds: float = 60) -> int:
    """Push this process's pid to ``<key>:started``, then block until ``key`` gets an item.

    A test waits for the start with BLPOP on ``<key>:started`` and ends the
    task with RPUSH on ``key``: nothing is timed.
    """
    client = _redis()
    client.rpush(f"{key}:started", os.getpid())
    client.blpop([key], timeout=seconds)
    return os.getpid()


#: One client per process for ``stamp`` (a new connection per task would be its whole cost).
_stamp_clients: dict[int, redis.Redis] = {}


@shared_task(bind=True)
def stamp(self: Any, key: str) -> None:
    """Append "<start epoch s> <periodic due> <periodic name>" to the Redis list ``key``.

    Beat's burst tests and benchmark read when each periodic run started.
    """
    started = time.time()
    client = _stamp_clients.get(os.getpid())
    if client is None:
        client = _stamp_clients[os.getpid()] = _redis()
    headers = self.request.headers
    due, name = headers.get("periodic_task_due", ""), headers.get("periodic_task_name", "")
    client.rpush(key, f"{started:.6f} {due} {name}")


task_logger = get_task_logger(__name__)


@shared_task
def logged(message: str) -> str:
    """Log ``message`` through get_task_logger (its record names this task)."""
    task_logger.warning(message)
    return message


@shared_task(throws=(KeyError,))
def expected_failure(key: str) -> None:
    """Fail with an error the task declares as expected (``throws``)."""
    raise KeyError(key)


class Audited(Task):
    """A Task base class that records each hook it gets, in order, in Redis (``base=``)."""

    max_retries = 1  # an option as a class attribute: the default of its tasks

    def _note(self, task_id: str, what: str) -> None:
        _redis().rpush(f"hooks:{task_id}", what)

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        self._note(task_id, "before_start")

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self._note(task_id, f"on_success:{retval}")

    def on_failure(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        self._note(task_id, f"on_failure:{type(exc).__name__}:{'ValueError' in (einfo or '')}")

    def on_retry(self, exc: Any, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        self._note(task_id, "on_retry")

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        self._note(task_id, f"after_return:{status}:{self.request.id == task_id}")
        if args and args[0] == "hook-raises":
            raise RuntimeError("a hook that raises does not change the result")
        if args and args[0] == "hook-exits":
            raise SystemExit(3)  # nor does one that calls sys.exit()


@shared_task(base=Audited, bind=True)
def audited(self: Any, mode: str) -> str:
    """Succeed, fail, retry once or have after_return raise, by ``mode``."""
    if mode == "fail":
        raise ValueError("asked to fail")
    if mode == "retry" and self.request.retries == 0:
        raise self.retry(countdown=0)
    return mode


# -- async def tasks (django_taskq/async_run.py) ------------------------------------
@shared_task
async def async_add(x: int, y: int) -> int:
    await asyncio.sleep(0)
    return x + y


@shared_task
async def async_loop_id() -> list[int]:
    """The id of the loop that runs it and this process's pid."""
    return [id(asyncio.get_running_loop()), os.getpid()]


@shared_task
async def async_fail(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


@shared_task(autoretry_for=(RuntimeError,), max_retries=2, default_retry_delay=0)
async def async_flaky(key: str) -> int:
    attempt = int(_redis().incr(key))
    if attempt < 2:
        raise RuntimeError(f"attempt {attempt}")
    return attempt


@shared_task(soft_time_limit=0.5)
async def async_soft_limited(key: str) -> str:
    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:  # how the soft limit reaches an awaiting coroutine
        _redis().set(key, "cleaned up")
        raise
    finally:
        _redis().incr(f"{key}:left")  # once: the coroutine never resumes in a later task
    return "not reached"


@shared_task
async def async_waits_inside(allow: bool) -> Any:
    """Await aget() on another task from inside an async task (refused unless allowed)."""
    sent = await async_add.adelay(1, 1)
    try:
        return await sent.aget(timeout=5, disable_sync_subtasks=not allow)
    except RuntimeError as exc:
        return f"refused: {exc}"


@shared_task(bind=True)
async def lane_wait(self: Any, key: str, n: int = 0) -> dict[str, Any]:
    """Wait in flight until let go: the async lane's tests (worker/lane.py).

    As it starts it notes how many of its kind run at once ({key}:seen) and
    says so ({key}:started gets its id). With ``n`` it first meets n - 1
    others: the n-th to arrive lets all n go, so n of them must be in flight
    at once, or they wait for ever. Otherwise the test lets each go by pushing
    a token on {key}:go. Cancelled (a time limit, a terminate), it notes
    {key}:cancelled:<its id>. Returns its own request's id read before and
    after the waits, the id of the request current in a thread that
    sync_to_async ran for it, its process and its delivery count.
    """
    from asgiref.sync import sync_to_async

    from django_taskq.broker import aio
    from django_taskq.request import current_request

    client = await aio.client()
    tag = "{" + key + "}"
    own = self.request.id
    running = await client.incr(f"{tag}:running")
    try:
        await client.rpush(f"{tag}:seen", running)
        await client.rpush(f"{key}:started", own)
        if n and await client.incr(f"{tag}:arrived") == n:
            await client.rpush(f"{tag}:go", *(["go"] * n))
        for _ in range(30):  # short blocks: the client's socket timeout is a few seconds
            if await client.blpop([f"{tag}:go"], timeout=1) is not None:
                break
        else:
            raise RuntimeError(f"{own}: nobody let it go within 30 s")
    except asyncio.CancelledError:
        await client.set(f"{key}:cancelled:{own}", "1")
        raise
    finally:
        await client.decr(f"{tag}:running")
    in_thread = await sync_to_async(lambda: getattr(current_request(), "id", None))()
    return {
        "before": own,
        "after": self.request.id,
        "in_thread": in_thread,
        "pid": os.getpid(),
        "delivery": self.request.delivery_count,
    }


@shared_task(bind=True, acks_late=False, track_started=True)
async def lane_early(self: Any, key: str) -> dict[str, Any]:
    """lane_wait, acked on receipt and STARTED while it waits (the lane's early steps)."""
    return dict(await lane_wait.run(self, key))


# -- children and collect() -----------------------------------------------------------
@shared_task
def fan_out(n: int, depth: int) -> int:
    """Sends ``n`` add() tasks and, while depth > 0, one fan_out of its own."""
    for i in range(n):
        add.delay(i, depth)
    if depth > 0:
        fan_out.delay(1, depth - 1)
    return n


# -- Task.replace() -----------------------------------------------------------------------
@shared_task(bind=True)
def replaced_by_add(self: Any, x: int, y: int) -> int:
    return self.replace(add.s(x, y))


@shared_task(bind=True)
def replaced_twice(self: Any, x: int) -> int:
    return self.replace(replaced_by_add.s(x, x))


@shared_task(bind=True)
def replaced_by_group(self: Any) -> None:
    from django_taskq import group

    self.replace(group(add.s(1, 1), add.s(2, 2)))


# -- unique tasks (tests/e2e/test_unique.py) ----------------------------------
@shared_task(unique_for=60)
def unique_gated(key: str, value: Any, gate: str = "") -> Any:
    """Unique by its arguments: record the start, wait for ``gate`` (a list) if named, the end."""
    _redis().rpush(key, f"start:{value}")
    if gate:
        _redis().blpop([gate], timeout=30)
    _redis().rpush(key, f"end:{value}")
    return value


@shared_task(unique_for=60)
def unique_fail(key: str) -> None:
    raise ValueError(f"unique_fail {key}")


@shared_task(unique_for=60)
def unique_rejected(key: str) -> None:
    from django_taskq.exceptions import Reject

    raise Reject(f"unique_rejected {key}")


@shared_task(bind=True, unique_for=60, max_retries=3)
def unique_retried(self: Any, key: str) -> int:
    """Retried once (1.5 s later), then returns its attempt count (counted in Redis)."""
    n = int(_redis().incr(key))
    if n == 1:
        raise self.retry(countdown=1.5)
    return n


@shared_task(bind=True, unique_for=60, max_retries=3)
def unique_retried_with_headers(self: Any, key: str) -> list[Any]:
    """Retried once with ``headers=`` (1.5 s later); then its attempt and what its headers hold."""
    n = int(_redis().incr(key))
    if n == 1:
        raise self.retry(countdown=1.5, headers={"attempt": "second"})
    headers = self.request.headers
    return [n, headers.get("attempt"), "unique" in headers]


@shared_task(unique_for=60, time_limit=1)
def unique_killed(key: str) -> None:
    """Runs past its hard time limit: the worker parent kills the child."""
    _redis().rpush(key, "start")
    time.sleep(30)


# -- serializers and compression (tests/e2e/test_codecs.py) ------------------------------
@shared_task(serializer="msgpack")
def msgpack_types(values: list[Any]) -> dict[str, Any]:
    """The values as they arrived, with their type names (msgpack keeps every tagged type)."""
    return {"types": [type(v).__name__ for v in values], "values": values}


@shared_task(compression="zlib", result_compression="zlib")
def zlib_echo(value: Any) -> Any:
    return value


@shared_task(serializer="msgpack", compression="zstd", result_compression="zstd")
def zstd_echo(value: Any) -> Any:
    return value
