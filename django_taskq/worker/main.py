"""The worker process: banner, signals, pool choice, clean shutdown.

SIGTERM or SIGINT starts a warm shutdown: stop fetching, finish running
tasks, hand unstarted messages back. A second signal is a cold shutdown:
running tasks are interrupted and their messages handed back too, so nothing
is lost either way.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import Any, TextIO

import redis

from django_taskq import signals
from django_taskq.broker import keys
from django_taskq.broker import queues as queue_registry
from django_taskq.broker.connection import broker_url, fill_pool, get_broker, redact
from django_taskq.conf import check_async_concurrency, taskq_settings
from django_taskq.registry import registry
from django_taskq.worker import streams as ops
from django_taskq.worker.burst import Idle
from django_taskq.worker.consumer import Consumer
from django_taskq.worker.control import ControlHandler
from django_taskq.worker.flusher import Flusher
from django_taskq.worker.heartbeat import Heartbeat
from django_taskq.worker.inspection import Running
from django_taskq.worker.limits import TimeLimits
from django_taskq.worker.maintenance import Maintenance
from django_taskq.worker.overrides import RuntimeLimits
from django_taskq.worker.settle import Settler
from django_taskq.worker.tally import Tally
from django_taskq.worker.terminate import signal_name

logger = logging.getLogger("django_taskq.worker")

POOLS = ("prefork", "threads", "solo")


def pool_too_small(client: Any, threads: int) -> str | None:
    """Why ``client``'s connection pool is too small for ``threads`` threads; None if it is not.

    Every consumer thread holds a connection while it waits for messages,
    beside the flusher, the heartbeat and housekeeping; a pool capped below
    that makes threads lose Redis ("Too many connections") again and again.
    django_taskq's own clients are not capped (broker/connection.py); a cap
    comes from TASKQ_BROKER_CONNECTION_OPTIONS or a django-redis cache's
    CONNECTION_POOL_KWARGS.
    """
    limit = getattr(getattr(client, "connection_pool", None), "max_connections", None)
    need = threads + THREADS_SPARE_CONNECTIONS
    if not isinstance(limit, int) or limit >= need:
        return None
    return (
        f"the broker's connection pool allows {limit} connections, but -P threads -c {threads} "
        f"needs about {need}: raise max_connections in TASKQ_BROKER_CONNECTION_OPTIONS "
        "(or in the cache's CONNECTION_POOL_KWARGS with TASKQ_REDIS_CACHE_ALIAS)"
    )


#: Connections a threads-pool worker uses beside one per thread (flusher,
#: heartbeat, maintenance, control, beat, a thread's own while it acks early).
THREADS_SPARE_CONNECTIONS = 10


class ColdShutdown(BaseException):
    """Raised in the solo worker's main thread by the signal that makes a shutdown cold."""


class Worker:
    """``taskq_worker``: consume ``queues`` with a pool of consumers."""

    def __init__(
        self,
        queues: list[str] | None = None,
        concurrency: int | None = None,
        pool: str | None = None,
        hostname: str | None = None,
        *,
        prefetch: int | None = None,
        max_tasks_per_child: int | None = None,
        max_memory_per_child: int | None = None,
        time_limit: float | None = None,
        soft_time_limit: float | None = None,
        beat: bool = False,
        async_concurrency: int | None = None,
        burst: bool = False,
        max_tasks: int | None = None,
        shutdown_timeout: float | None = None,
        graceful: bool = True,
        failed_exit_code: int | None = None,
        empty_exit_code: int | None = None,
        summary: str | None = None,
        stdout: TextIO | Any = None,
        metrics: Any = None,
    ) -> None:
        self.queues = queues or [str(taskq_settings.DEFAULT_QUEUE)]
        for queue in self.queues:
            keys.check_queue_name(queue, "taskq_worker -Q")
        self.pool = pool or str(taskq_settings.WORKER_POOL)
        if self.pool not in POOLS:
            raise ValueError(f"unknown pool {self.pool!r}: choose one of {', '.join(POOLS)}")
        self.concurrency = 1 if self.pool == "solo" else (concurrency or taskq_settings.concurrency)
        self.hostname = hostname or f"taskq@{socket.gethostname()}"
        # New at every start: a container restarted in place is pid 1 on the
        # same host again, and must not take over its dead predecessor's names.
        self.token = secrets.token_hex(4)
        self.name = f"{self.hostname}:{os.getpid()}:{self.token}"
        self.options: dict[str, Any] = {
            "prefetch": prefetch,
            "max_tasks_per_child": max_tasks_per_child or taskq_settings.WORKER_MAX_TASKS_PER_CHILD,
            "max_memory_per_child": max_memory_per_child
            or taskq_settings.WORKER_MAX_MEMORY_PER_CHILD,
            "time_limit": time_limit if time_limit is not None else taskq_settings.TASK_TIME_LIMIT,
            "soft_time_limit": (
                soft_time_limit
                if soft_time_limit is not None
                else taskq_settings.TASK_SOFT_TIME_LIMIT
            ),
            "async_concurrency": (
                check_async_concurrency(async_concurrency, "taskq_worker --async-concurrency")
                if async_concurrency is not None
                else taskq_settings.async_concurrency
            ),
        }
        check_stop_options(
            burst, max_tasks, shutdown_timeout, failed_exit_code, empty_exit_code, graceful
        )
        #: A cold shutdown this many seconds after a signal's warm one (--shutdown-timeout).
        self.shutdown_timeout = shutdown_timeout
        #: False: the first signal shuts down cold (--no-graceful-shutdown).
        self.graceful = graceful
        #: The solo consumer runs in the main thread: a cold signal may raise ColdShutdown.
        self._solo_running = False
        self.failed_exit_code = failed_exit_code
        self.empty_exit_code = empty_exit_code
        #: What the consumers ended (--max-tasks, the burst exit codes); None: not counted.
        self.tally: Tally | None = None
        #: Write the tally and exit code here as JSON at exit (--summary).
        self.summary = summary
        counted = (max_tasks, failed_exit_code, empty_exit_code, summary)
        if any(option is not None for option in counted):
            self.tally = Tally(max_tasks)
            self.options["tally"] = self.tally  # inherited by prefork children
        self._max_logged = False
        self.beat = beat
        #: Stop once the queues have nothing left to run now (--burst; burst.py).
        self.burst = burst
        #: --burst: consumers tell the watch when a fetch comes back empty.
        self.idle: Idle | None = None
        if burst:
            self.idle = Idle()
            self.options["idle"] = self.idle  # inherited by prefork children
        # A bound metrics.exposition.MetricsServer (--metrics-port): run() starts it.
        self.metrics = metrics
        self.stdout = stdout or sys.stdout
        self.started = time.time()
        self.stopping = threading.Event()
        self.cold = threading.Event()
        self.consumer_stop = threading.Event()
        self._consumer_names: list[str] = []
        self._consumers: list[Consumer] = []
        #: Every queue consumed since start (a cold stop gives back what is held on any).
        self._queues_ever = list(self.queues)
        self.prefork: Any = None
        self.runtime_limits = RuntimeLimits(shared=self.pool == "prefork")
        self.control = ControlHandler(self)
        self.maintenance = Maintenance(self.stopping, self.queues, self.on_control)
        self.heartbeat = Heartbeat(
            self.stopping,
            self.consumer_names,
            self.name,
            self.describe,
            tasks=lambda: registry.names(include_internal=True),
        )

    # -- introspection -----------------------------------------------------------
    def consumer_name(self, suffix: str) -> str:
        """A consumer's name: this worker's (host, pid, start token) and ``suffix``."""
        return f"{self.name}:{suffix}"

    def describe(self) -> dict[str, Any]:
        """What inspect and the admin show of this worker (written with every heartbeat)."""
        info: dict[str, Any] = {
            "name": self.name,
            "hostname": self.hostname,
            "pid": os.getpid(),
            "queues": list(self.queues),
            "pool": self.pool,
            "concurrency": self.concurrency,
            "started": self.started,
            "running": [task.summary() for task in self.running_tasks()],
            "load": _load_average(),
        }
        if self.prefork is not None:
            info["processes"] = self.prefork.processes()
        return info

    def running_tasks(self) -> list[Running]:
        """The tasks this worker's consumers run now, with their start times."""
        if self.prefork is not None:
            running: list[Running] = self.prefork.running()
            return running
        out = []
        now, mono = time.time(), time.monotonic()
        for consumer in list(self._consumers):
            for current in consumer.running_now():
                assert current.envelope is not None
                out.append(
                    Running(
                        current.envelope.id,
                        current.envelope.task,
                        now - (mono - current.started),
                        current.delivery.stream,
                        current.delivery.entry_id,
                    )
                )
        return out

    def consumer_prefetch(self) -> int:
        """Most messages one consumer holds unstarted."""
        return int(self.options["prefetch"] or taskq_settings.WORKER_PREFETCH)

    def consumer_names(self) -> list[str]:
        if self.prefork is not None:
            names: list[str] = self.prefork.consumer_names()
            return names
        return list(self._consumer_names)

    def banner(self) -> str:
        tasks = registry.names()
        lines = [
            f"django_taskq worker {self.hostname} (pid {os.getpid()})",
            f"  broker:      {redact(broker_url())}",
            f"  queues:      {', '.join(self.queues)} (in this order of preference)",
            f"  pool:        {self.pool}, concurrency {self.concurrency}"
            + (
                f", async def tasks {self.options['async_concurrency']} at once per consumer"
                if self.options["async_concurrency"] > 1
                else ""
            ),
            f"  key prefix:  {taskq_settings.KEY_PREFIX}",
            f"  heartbeat:   lost after {taskq_settings.WORKER_HEARTBEAT_TIMEOUT:g}s; "
            f"max deliveries {taskq_settings.MAX_DELIVERIES}",
            f"  tasks ({len(tasks)}):",
        ]
        lines += [f"    . {name}" for name in tasks] or [
            "    (none: is tasks.py in an installed app?)"
        ]
        if self.beat:
            lines.append("  beat:        embedded (-B)")
        if self.burst:
            lines.append("  burst:       stops once nothing is left to run now (--burst)")
        if self.tally is not None and self.tally.max_tasks is not None:
            lines.append(f"  max tasks:   stops after {self.tally.max_tasks} (--max-tasks)")
        if self.shutdown_timeout is not None:
            lines.append(
                f"  shutdown:    a warm shutdown turns cold after {self.shutdown_timeout:g}s "
                "(--shutdown-timeout)"
            )
        if not self.graceful:
            lines.append(
                "  shutdown:    cold at the first signal: running tasks are interrupted and "
                "handed back (--no-graceful-shutdown)"
            )
        if self.metrics is not None:
            lines.append(f"  metrics:     {self.metrics.url}")
        if self.pool in ("solo", "threads"):
            lines.append(
                "  note:        heartbeats run in this process: a task that holds the GIL in "
                "C code longer than the heartbeat timeout looks dead and is redelivered; "
                "use prefork for such tasks"
            )
        if self.pool == "threads" and (
            self.options["time_limit"] or self.options["soft_time_limit"]
        ):
            lines.append(
                "  WARNING:     time limits are not enforced in the threads pool "
                "(a thread cannot be interrupted), except for async def tasks with "
                "--async-concurrency above 1 (cancelled); use prefork"
            )
        return "\n".join(lines)

    # -- running -----------------------------------------------------------------
    def run(self) -> int:
        """Run until shut down; returns the process exit code."""
        from django.db import connections

        from django_taskq.history.recorder import start_in_worker

        self.stdout.write(self.banner() + "\n")
        self.stdout.flush()
        self._install_signals()
        if self.metrics is not None:
            self.metrics.start()  # before Redis: a scrape then says taskq_broker_up 0
        if not self._connect():
            return 0  # stopped while waiting for Redis
        if not self.heartbeat.beat_until_done():  # registered before "ready"
            return 0
        self.heartbeat.start()
        connections.close_all()
        start_in_worker(self.stopping, hostname=self.hostname)
        beat_thread = self._start_beat() if self.beat else None
        if self.burst:
            from django_taskq.worker.burst import BurstWatch

            assert self.idle is not None
            BurstWatch(
                self.stopping, lambda: list(self.queues), self.request_stop, self.idle
            ).start()
        try:
            if self.pool == "prefork":
                self._run_prefork()
            elif self.pool == "threads":
                self._run_threads()
            else:
                self._run_solo()
        finally:
            self.stopping.set()
            self.consumer_stop.set()
            if beat_thread is not None:
                beat_thread.join(timeout=5)
            self._unregister()
            signals.send(signals.worker_shutdown, self)
            logger.info("worker %s stopped", self.hostname)
        code = self.exit_code()
        if self.summary is not None:
            self._write_summary(code)
        return code

    def _write_summary(self, code: int) -> None:
        """--summary FILE: what the consumers ended, and the exit code, as one JSON object."""
        assert self.tally is not None and self.summary is not None
        report = {"ended": self.tally.ended, "failed": self.tally.failed, "exit_code": code}
        try:
            with open(self.summary, "w", encoding="utf-8") as out:
                json.dump(report, out)
        except OSError as exc:
            logger.error("taskq_worker --summary %s: could not write it: %s", self.summary, exc)

    def exit_code(self) -> int:
        """0, or --failed-exit-code / --empty-exit-code for a burst that asked for them."""
        if self.tally is None or not self.burst:
            return 0
        if self.failed_exit_code is not None and self.tally.failed:
            logger.info(
                "burst: %d task(s) failed or were dead-lettered; exit code %d (--failed-exit-code)",
                self.tally.failed,
                self.failed_exit_code,
            )
            return self.failed_exit_code
        if self.empty_exit_code is not None and not self.tally.ended:
            logger.info(
                "burst: nothing was run; exit code %d (--empty-exit-code)", self.empty_exit_code
            )
            return self.empty_exit_code
        return 0

    def task_ended(self, failed: bool) -> None:
        """An in-process consumer ended a message: count it; stop at --max-tasks."""
        assert self.tally is not None
        if self.tally.count(failed):
            self.max_tasks_reached()

    def max_tasks_reached(self) -> None:
        """--max-tasks messages ended: a warm shutdown (said once)."""
        if not self._max_logged:
            self._max_logged = True
            assert self.tally is not None
            logger.info(
                "worker %s ended %d task(s) (--max-tasks %d); warm shutdown",
                self.hostname,
                self.tally.ended,
                self.tally.max_tasks,
            )
        self.request_stop()

    def _connect(self) -> bool:
        """Register, create the groups, recover lost workers' messages; wait while Redis is down.

        Like beat, a worker started before Redis waits for it (one line per
        attempt) instead of exiting. Returns False if it was stopped meanwhile.
        """
        delay = 0.5
        while not self.stopping.is_set():
            try:
                client = get_broker()
                from django_taskq.broker.migrate import old_keys_present

                if old_keys_present(client):
                    logger.warning(
                        "Redis holds keys of django_taskq 0.1, which this worker does not "
                        "read: stop the old workers and run manage.py taskq_migrate_keys"
                    )
                queue_registry.register(client, self.queues)
                ops.ensure_groups(client, keys.streams_for(self.queues))
                self.runtime_limits.load(client)
                # Give back at once what dead consumers (a predecessor on this
                # host, say) still hold, instead of waiting for a sweep.
                moved = ops.reclaim_dead(client, keys.streams_for(self.queues))
                if moved:
                    logger.warning("recovered %d message(s) from lost workers", moved)
                return True
            except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
                logger.warning(
                    "cannot reach Redis at %s (%s); retrying in %.1fs",
                    redact(broker_url()),
                    exc,
                    delay,
                )
                self.stopping.wait(delay)
                delay = min(delay * 2, 5.0)
        return False

    def _start_housekeeping(self) -> None:
        """Beat for the consumers now (a heartbeat exists before the first read); the rest."""
        self.heartbeat.beat_until_done()
        self.maintenance.start()

    def _announce_ready(self) -> None:
        """Say "ready" once consumers run and control requests are heard.

        Waiting for the housekeeping thread's subscription means a control
        request sent after "ready" (a script, a test) always reaches it.
        """
        if not self.maintenance.listening.wait(10):
            logger.warning("worker %s does not hear control requests yet", self.hostname)
        signals.send(signals.worker_ready, self)
        logger.info("worker %s ready", self.hostname)

    def _run_prefork(self) -> None:
        from django_taskq.worker.prefork import PreforkPool

        self.prefork = PreforkPool(self, self.concurrency)
        self.prefork.start()  # each spawn beats for its child before forking it
        self.maintenance.start()
        self._announce_ready()
        self.prefork.run(self.stopping, self.cold)

    def _run_threads(self) -> None:
        self._check_pool_size()
        # A connection per thread now, not one at a time as they ramp up (fill_pool()).
        fill_pool(get_broker(), self.concurrency + THREADS_SPARE_CONNECTIONS)
        limits = TimeLimits(None, None, soft_only=True)
        # One settler for every thread: a flush then carries what all of them
        # ended since the last one, not one task each (I/O-bound tasks end
        # one by one on each thread, so per-thread flushes cost a round trip
        # a task; docs/benchmarks.md, "Concurrency").
        settler = Settler(self.hostname)
        # And one thread flushes it: consumers queue their writes and go on
        # instead of queueing on the flush lock behind each other (worker/flusher.py).
        flusher = settler.background = Flusher(settler)
        flusher.start()
        threads = []
        for index in range(self.concurrency):
            name = self.consumer_name(f"t{index}")
            self._consumer_names.append(name)
            consumer = self._consumer(name, limits, settler)
            self._consumers.append(consumer)
            threads.append(
                threading.Thread(
                    target=self._run_guarded, args=(consumer,), name=f"taskq-{index}", daemon=True
                )
            )
        self._start_housekeeping()
        for t in threads:
            t.start()
        self._announce_ready()
        try:
            while any(t.is_alive() for t in threads):
                if self.cold.is_set():
                    self._give_back_all()
                    return
                for t in threads:
                    t.join(timeout=0.2)
        finally:
            settler.background = None  # from here on, whoever flushes waits for it
            flusher.stop()

    def _check_pool_size(self) -> None:
        warning = pool_too_small(get_broker(), self.concurrency)
        if warning:
            logger.warning("%s", warning)

    def _run_solo(self) -> None:
        name = self.consumer_name("0")
        self._consumer_names.append(name)
        limits = TimeLimits(
            self.options["soft_time_limit"], self.options["time_limit"], soft_only=False
        )
        consumer = self._consumer(name, limits)
        self._consumers.append(consumer)
        self._start_housekeeping()
        self._announce_ready()
        try:
            # Set inside the try: a ColdShutdown raised from here on is caught below.
            self._solo_running = True
            self._run_guarded(consumer)
        except ColdShutdown:
            self._give_back_all()
        finally:
            self._solo_running = False

    def _run_guarded(self, consumer: Consumer) -> None:
        """Run an in-process consumer; if it dies of a bug, redeliver and restart it.

        A prefork child that dies is replaced by its parent. A consumer that
        runs in this process would otherwise leave its fetched messages
        pending under a name whose heartbeat this process keeps alive, so
        no other worker would ever take them back. What it held counts a
        delivery, so a message that breaks the consumer reaches
        TASKQ_MAX_DELIVERIES. (A task's own exceptions, sys.exit() included,
        are that task's failure and never get here.)
        """
        while True:
            try:
                consumer.run()
                return
            except Exception:
                logger.exception(
                    "consumer %s failed; its messages are redelivered and it restarts",
                    consumer.name,
                )
            consumer.local.clear()
            consumer.unsettled.clear()
            consumer.settler = type(consumer.settler)(consumer.hostname)
            while True:
                try:
                    ops.reclaim_consumer(
                        get_broker(),
                        keys.streams_for(self._queues_ever),
                        consumer.name,
                        crashed=True,
                    )
                    break
                except Exception:
                    logger.exception("cannot give back the messages of %s yet", consumer.name)
                    if self.consumer_stop.wait(1.0):
                        return
            if self.consumer_stop.is_set():
                return

    def _consumer(self, name: str, limits: TimeLimits, settler: Settler | None = None) -> Consumer:
        return Consumer(
            name,
            self.queues,
            self.hostname,
            self.consumer_stop,
            prefetch=self.options["prefetch"],
            limits=limits,
            tune=self.runtime_limits.tune,
            async_concurrency=self.options["async_concurrency"],
            on_end=self.task_ended if self.tally is not None else None,
            enough=self.tally.reached if self.tally is not None else None,
            on_idle=self.idle.tell if self.idle is not None else None,
            settler=settler,
        )

    def _give_back_all(self) -> None:
        """Cold shutdown: hand back every message our consumers hold."""
        client = get_broker()
        for name in self.consumer_names():
            ops.reclaim_consumer(client, keys.streams_for(self._queues_ever), name, crashed=False)

    def _start_beat(self) -> threading.Thread:
        from django_taskq.beat import run_beat

        thread = threading.Thread(
            target=run_beat,
            args=(self.stopping,),
            kwargs={"hostname": self.hostname},
            name="taskq-beat",
            daemon=True,
        )
        thread.start()
        return thread

    # -- signals and control -------------------------------------------------------
    def _install_signals(self) -> None:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.graceful and not self.cold.is_set():
            logger.warning(
                "cold shutdown (%s, --no-graceful-shutdown): interrupting tasks and handing "
                "their messages back",
                signal.Signals(signum).name,
            )
            self._go_cold()
            return
        if not self.stopping.is_set():
            logger.warning(
                "warm shutdown (%s): finishing running tasks; send it again for a cold shutdown",
                signal.Signals(signum).name,
            )
            self.stopping.set()
            self.consumer_stop.set()
            if self.shutdown_timeout is not None:
                timer = threading.Timer(self.shutdown_timeout, self._shutdown_timed_out)
                timer.daemon = True
                timer.start()
            return
        if not self.cold.is_set():
            logger.warning("cold shutdown: interrupting tasks and handing their messages back")
            self._go_cold()

    def _go_cold(self) -> None:
        """Stop now: every pool interrupts its tasks and hands their messages back.

        The solo consumer runs on this (the main) thread, inside its task:
        ColdShutdown, raised from the signal handler, is how it is left.
        Before the consumer runs (starting up) the events alone stop it.
        """
        self.stopping.set()
        self.consumer_stop.set()
        self.cold.set()
        if self.pool == "solo" and self._solo_running:
            raise ColdShutdown()

    def _shutdown_timed_out(self) -> None:
        """--shutdown-timeout passed: turn cold, as a second SIGTERM does (it is one)."""
        if self.cold.is_set():
            return
        logger.warning(
            "warm shutdown not finished after %gs (--shutdown-timeout)", self.shutdown_timeout
        )
        # The signal runs the cold path on the main thread, where the solo pool needs it.
        os.kill(os.getpid(), signal.SIGTERM)

    def on_control(self, payload: dict[str, Any]) -> None:
        """A message on the control channel (on the housekeeping thread)."""
        if payload.get("op") == "revoke" and payload.get("terminate"):
            ids = {str(i) for i in payload.get("ids") or []}
            try:
                signame = signal_name(payload.get("signal") or "SIGKILL")
            except ValueError as exc:
                logger.error("%s; nothing terminated", exc)
                return
            if self.prefork is not None:
                self.prefork.terminate(ids, signame)
                return
            # solo and threads: Terminated is raised in the thread running it.
            for consumer in list(self._consumers):
                if consumer.lane is not None and consumer.lane.terminate_soon(ids, signame):
                    continue  # cancelled on its loop (worker/lane.py), its lane goes on
                if consumer.gate.terminate(ids, signame):
                    logger.warning(
                        "terminating a task of %s (%s pool: Terminated is raised in its "
                        "thread; %s is not sent, as it would reach the whole worker)",
                        sorted(ids),
                        self.pool,
                        signame,
                    )
            return
        self.control(payload)

    def request_stop(self) -> None:
        """Warm shutdown, as the first SIGTERM does (remote control's ``shutdown``)."""
        self.stopping.set()
        self.consumer_stop.set()

    def set_queues(self, queues: list[str]) -> None:
        """Consume ``queues`` from now on (remote control's add_consumer / cancel_consumer).

        Groups exist and the queues are registered before any consumer reads
        them. In-process consumers switch at their next fetch; prefork
        children are restarted by the caller, warmly, to pick the list up.
        """
        client = get_broker()
        queue_registry.register(client, queues)
        ops.ensure_groups(client, keys.streams_for(queues))
        self.queues = list(queues)
        self._queues_ever = list(dict.fromkeys([*self._queues_ever, *queues]))
        streams = keys.streams_for(self.queues)
        for consumer in self._consumers:
            consumer.queues, consumer.streams = list(self.queues), streams
        self.maintenance.set_queues(self.queues)
        logger.info("worker %s now consumes %s", self.hostname, ", ".join(self.queues))

    def _unregister(self) -> None:
        try:
            self.heartbeat.close(self.consumer_names())
        except Exception as exc:
            logger.warning("could not unregister worker %s: %s", self.hostname, exc)


def check_stop_options(
    burst: bool,
    max_tasks: int | None,
    shutdown_timeout: float | None,
    failed_exit_code: int | None,
    empty_exit_code: int | None,
    graceful: bool = True,
) -> None:
    """ValueError naming the flag for a --max-tasks, --shutdown-timeout or exit code refused."""
    if max_tasks is not None and max_tasks < 1:
        raise ValueError(
            f"taskq_worker --max-tasks {max_tasks}: give 1 or more (tasks the worker ends "
            "before it stops), or leave it out to run until stopped"
        )
    if shutdown_timeout is not None and not shutdown_timeout > 0:
        raise ValueError(
            f"taskq_worker --shutdown-timeout {shutdown_timeout:g}: give seconds above 0, or "
            "leave it out to wait for running tasks as long as they take "
            "(--no-graceful-shutdown: a cold shutdown at the first signal)"
        )
    if shutdown_timeout is not None and not graceful:
        raise ValueError(
            "taskq_worker --no-graceful-shutdown with --shutdown-timeout: the first signal "
            "already shuts down cold, so there is no warm shutdown to time out; give one of them"
        )
    for flag, code in (
        ("--failed-exit-code", failed_exit_code),
        ("--empty-exit-code", empty_exit_code),
    ):
        if code is None:
            continue
        if not burst:
            raise ValueError(
                f"taskq_worker {flag} needs --burst: only a burst worker ends by itself "
                "(a stopped worker exits 0)"
            )
        if not 0 <= code <= 255:
            raise ValueError(f"taskq_worker {flag} {code}: an exit code is 0-255")


def _load_average() -> list[float] | None:
    """The host's 1, 5 and 15 minute load averages, where the system has them."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:  # pragma: no cover - not Unix
        return None
