"""A Redis Cluster client that behaves, for django_taskq, like a client of one Redis.

``TaskqCluster`` is redis-py's ``RedisCluster`` with three differences, so
that the code written for one Redis runs unchanged on Cluster:

- **A cluster that is reconfiguring looks like a lost connection.** A
  failover or a slot move answers ``CLUSTERDOWN``, ``TRYAGAIN`` or "slot not
  covered" for a moment; those become ``ClusterUnavailable``, a
  ``redis.ConnectionError``, which every caller already treats as "retry
  later" (a send retries with its once key, a consumer reconnects and reads
  back what it holds). The client's own retry count is 0, as on one Redis:
  the code that sent a command decides what a lost reply means. Redirects
  (``MOVED``, ``ASK``) are still followed inside one call.
- **Pipelines run scripts and publishes.** redis-py refuses ``EVALSHA`` and
  ``PUBLISH`` in a cluster pipeline (``PIPELINE_BLOCKED_COMMANDS``), though
  it routes ``EVALSHA`` by its keys and ``PUBLISH`` to any node, which is
  all they need; ``TaskqClusterPipeline`` queues them like other commands.
- **Pipelines keep their order where it matters.** A cluster pipeline sends
  each node its share at once, so commands to different nodes run in no
  particular order. ``barrier()`` marks a point that everything before it
  must have run by (the settle step writes results and follow-ups before it
  acks); each stretch between barriers is one round trip to every node it
  touches. A ``PUBLISH`` always waits for what was queued before it, as a
  notice of something written must not arrive before the write. If any
  part fails to reach its node, the pipeline raises at once, before the
  next stretch: the caller sends the whole pipeline again (everything sent
  through ``run_pipeline`` is idempotent), as it would on one Redis.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, ClusterPipeline, PipelineStrategy, RedisCluster
from redis.crc import key_slot
from redis.exceptions import (
    AskError,
    ClusterDownError,
    MasterDownError,
    MovedError,
    SlotNotCoveredError,
    TryAgainError,
)
from redis.retry import Retry

from django_taskq.broker.deadline import deadline_aware
from django_taskq.broker.urls import RedisTarget


class ClusterUnavailable(redis.ConnectionError):
    """Part of the cluster cannot serve a slot for now (a failover, a slot move)."""


#: Replies that mean "this slot is moving or failing over", not "this command is wrong".
RECONFIGURING: tuple[type[Exception], ...] = (
    ClusterDownError,
    TryAgainError,
    SlotNotCoveredError,
    MasterDownError,
    MovedError,
    AskError,
)
#: Replies in a pipeline after which the whole pipeline must be sent again.
TRANSIENT: tuple[type[Exception], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    *RECONFIGURING,
)


def _unavailable(exc: BaseException) -> redis.ConnectionError:
    if isinstance(exc, redis.ConnectionError):
        return exc
    return ClusterUnavailable(f"Redis Cluster is reconfiguring: {exc}")


class TaskqClusterPipeline(ClusterPipeline):
    """A cluster pipeline that runs EVALSHA, EVAL and PUBLISH, and honours barriers (module doc)."""

    _taskq_barriers: list[int]
    _taskq_wait: tuple[int, int] | None

    def _cuts(self) -> list[int]:
        return getattr(self, "_taskq_barriers", [])

    def evalsha(self, sha: str, numkeys: int, *keys_and_args: Any) -> Any:  # type: ignore[override]
        """Queue EVALSHA, routed by its keys (which must share a slot).

        The node is found here, from the first key's slot: left to redis-py,
        a cluster pipeline asks the server which arguments of an EVALSHA are
        keys (COMMAND GETKEYS), one round trip per script call, which made
        a pipeline of 1,000 sends four times slower. A slot that moved
        meanwhile answers MOVED, and redis-py sends the call again by its keys.
        """
        if not numkeys:
            return self._queue("EVALSHA", sha, numkeys, *keys_and_args)
        first = keys_and_args[0]
        slot = key_slot(first.encode() if isinstance(first, str) else first)
        node = self.nodes_manager.get_node_from_slot(slot)
        return self._queue("EVALSHA", sha, numkeys, *keys_and_args, target_nodes=node)

    def eval(self, script: str, numkeys: int, *keys_and_args: Any) -> Any:  # type: ignore[override]
        """Queue EVAL (``AsyncResult.get()``'s wait_result.lua), routed as ``evalsha()`` is."""
        first = keys_and_args[0]
        slot = key_slot(first.encode() if isinstance(first, str) else first)
        node = self.nodes_manager.get_node_from_slot(slot)
        return self._queue("EVAL", script, numkeys, *keys_and_args, target_nodes=node)

    def publish(self, channel: Any, message: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Queue PUBLISH, sent after everything queued before it."""
        self.barrier()
        return self._queue("PUBLISH", channel, message, **kwargs)

    def _queue(self, *args: Any, **kwargs: Any) -> Any:
        strategy: Any = self._execution_strategy
        return strategy.execute_command(*args, **kwargs)

    def wait_for_replicas(self, replicas: int, timeout_ms: int) -> None:
        """End every stretch with a WAIT on each node it writes to (broker/durability.py)."""
        self._taskq_wait = (replicas, timeout_ms)

    def _waits(self, part: list[Any], first_position: int) -> list[Any]:
        """One WAIT command per node the commands of ``part`` go to."""
        from redis.cluster import PipelineCommand

        wait: tuple[int, int] | None = getattr(self, "_taskq_wait", None)
        if wait is None:
            return []
        nodes: dict[str, Any] = {}
        for command in part:
            try:
                slot = self.determine_slot(*command.args)  # type: ignore[no-untyped-call]
            except redis.exceptions.RedisClusterException:
                continue  # a command of no slot (PUBLISH) writes no data
            if slot is None:
                continue
            node = self.nodes_manager.get_node_from_slot(slot)
            nodes[node.name] = node
        waits = []
        for i, node in enumerate(nodes.values()):
            waiting: Any = PipelineCommand(  # type: ignore[no-untyped-call]
                ("WAIT", *wait), {"target_nodes": node}, first_position + i
            )
            waiting.taskq_node = node.name
            waits.append(waiting)
        return waits

    def barrier(self) -> None:
        """Everything queued so far runs before anything queued after."""
        if not hasattr(self, "_taskq_barriers"):
            self._taskq_barriers = []
        self._taskq_barriers.append(len(self._execution_strategy.command_queue))

    def reset(self) -> None:  # type: ignore[override]
        self._taskq_barriers = []
        self._taskq_wait = None
        super().reset()  # type: ignore[no-untyped-call]

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        """Run the stretches between barriers in order; raise if a part did not reach Redis."""
        strategy: Any = self._execution_strategy
        stack = list(strategy.command_queue)
        if not stack:
            return list(super().execute(raise_on_error))
        if not isinstance(strategy, PipelineStrategy):  # a MULTI: one slot, one node
            try:
                return list(super().execute(raise_on_error))
            except RECONFIGURING as exc:
                raise _unavailable(exc) from exc
        send: Any = strategy.send_cluster_commands  # redis-py leaves these untyped
        annotate: Any = strategy.annotate_exception
        cuts = sorted({c for c in self._cuts() if 0 < c < len(stack)})
        bounds = [0, *cuts, len(stack)]
        replies: list[Any] = []
        try:
            for start, end in itertools.pairwise(bounds):
                part = stack[start:end]
                waits = self._waits(part, len(stack))
                try:
                    answered = send(part + waits, raise_on_error=False)
                except RECONFIGURING as exc:
                    raise _unavailable(exc) from exc
                if waits:
                    self._check_waits(waits, answered[len(part) :])
                    answered = answered[: len(part)]
                for reply in answered:
                    if isinstance(reply, redis.ConnectionError | redis.TimeoutError):
                        raise reply
                    if isinstance(reply, RECONFIGURING):
                        raise _unavailable(reply) from reply
                replies.extend(answered)
        finally:
            self.reset()
        if raise_on_error:
            for command, reply in zip(stack, replies, strict=True):
                if isinstance(reply, Exception):
                    annotate(reply, command.position + 1, command.args)
                    raise reply
        return replies

    def _check_waits(self, waits: list[Any], replies: list[Any]) -> None:
        from django_taskq.broker import durability

        replicas, timeout_ms = getattr(self, "_taskq_wait", None) or (0, 0)
        for command, reply in zip(waits, replies, strict=True):
            if isinstance(reply, redis.ConnectionError | redis.TimeoutError):
                raise reply
            where = f"Redis {command.taskq_node}"  # redis-py pops target_nodes
            durability.check(reply, replicas, timeout_ms, where)


class TaskqCluster(RedisCluster):
    """``RedisCluster`` whose reconfiguring errors are connection errors (module doc)."""

    def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().execute_command(*args, **kwargs)  # type: ignore[no-untyped-call]
        except RECONFIGURING as exc:
            raise _unavailable(exc) from exc

    def pipeline(self, transaction: Any = None, shard_hint: Any = None) -> TaskqClusterPipeline:
        if shard_hint:
            raise redis.exceptions.RedisClusterException("shard_hint is deprecated in cluster mode")
        return TaskqClusterPipeline(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=list(self.nodes_manager.startup_nodes.values()),
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
        )


#: Options of a connection to one node that RedisCluster refuses or has no use for.
_NOT_FOR_NODES = ("retry", "health_check_interval", "db")


def make_client(
    target: RedisTarget, options: dict[str, Any], *, on_connect: Callable[[Any], None]
) -> TaskqCluster:
    """A cluster client for ``target``, found from its seed nodes.

    ``options`` are the connection options of each node (timeouts...), the
    URL's own options override them. ``on_connect(connection)`` is called
    after every new connection's handshake (the connection counter).
    """
    kwargs = {k: v for k, v in options.items() if k not in _NOT_FOR_NODES}
    kwargs.update(target.options)
    kwargs.pop("redis_connect_func", None)
    kwargs.pop("ssl", None)
    given = kwargs.pop("connection_class", None)
    base = redis.SSLConnection if target.tls else redis.Connection
    kwargs["connection_class"] = deadline_aware(given or base)
    # The URL form makes redis-py build each node's pool from these keyword
    # arguments, connection_class included (the host/port form cannot take one).
    (host, port), *others = target.nodes
    try:
        return TaskqCluster(
            url=f"redis://{_host(host)}:{port}",
            startup_nodes=[ClusterNode(h, p) for h, p in others],  # type: ignore[no-untyped-call]
            retry=Retry(NoBackoff(), 0),
            redis_connect_func=on_connect,
            **kwargs,
        )
    except redis.exceptions.RedisClusterException as exc:
        # Made at first use: the nodes it asks for the slot map may all be
        # down (or not yet up). That is Redis being unreachable, which every
        # caller retries, not a configuration error.
        if "cannot be connected" not in str(exc):
            raise
        raise ClusterUnavailable(f"no node of the cluster answered ({exc})") from exc


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def primaries(client: Any) -> list[Any]:
    """Every primary node of a cluster client (to run a command on each)."""
    return list(client.get_primaries())


__all__ = [
    "RECONFIGURING",
    "TRANSIENT",
    "ClusterUnavailable",
    "TaskqCluster",
    "TaskqClusterPipeline",
    "make_client",
    "primaries",
]
