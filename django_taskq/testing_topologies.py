"""Real Redis Cluster and Redis Sentinel set-ups for tests, on this machine only.

- ``ClusterServers``: masters with replicas (3 + 3 by default), each a
  ``redis-server --cluster-enabled yes`` on 127.0.0.1 and a free port below
  55535 (the cluster bus listens on the port + 10000), joined by
  ``redis-cli --cluster create``. It is ready when every node answers
  ``cluster_state:ok`` to CLUSTER INFO and every replica is in sync.
- ``SentinelServers``: one master, one replica and three
  ``redis-server --sentinel`` processes watching them, ready when each
  Sentinel knows the replica and the two other Sentinels.

Both can kill a master and wait for the failover, reporting how long it
took; the cluster can move slots with ``redis-cli --cluster reshard``.
Readiness is found by asking the servers (CLUSTER INFO, INFO replication,
SENTINEL MASTER), never by sleeping a fixed time. Nothing here binds
anything but 127.0.0.1, and port 6379 (the machine's own Redis) and 26379
are never used.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis
from redis.crc import key_slot

from django_taskq.testing import RedisServer, free_port, make_certificate, tls_args

#: Ports a test must never take: the machine's own Redis and Sentinel.
RESERVED = {6379, 16379, 26379, 36379}
HOST = "127.0.0.1"
#: A replica's first sync starts at once (Redis waits 5 s for more replicas by default).
FAST_SYNC = ["--repl-diskless-sync-delay", "0"]


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def cluster_port(taken: set[int] = frozenset()) -> int:  # type: ignore[assignment]
    """A free port P below 55535 with P + 10000 free too (the cluster bus port)."""
    for _ in range(2000):
        port = random.randrange(20000, 55535)
        bus = port + 10000
        if {port, bus} & (RESERVED | taken):
            continue
        if _bindable(port) and _bindable(bus):
            return port
    raise RuntimeError("no free pair of ports (P, P + 10000) below 65535 was found")


def wait_until(check: Callable[[], bool], timeout: float, what: str, step: float = 0.02) -> float:
    """Ask ``check()`` until it is true; returns the seconds it took, or raises naming ``what``.

    For waiting on a server's state (CLUSTER INFO, INFO replication), which
    has no notification to block on.
    """
    started = time.monotonic()
    while True:
        try:
            if check():
                return time.monotonic() - started
        except (redis.RedisError, OSError):
            pass
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(step)


def _info(client: redis.Redis, section: str) -> dict[str, Any]:
    raw: dict[str, Any] = client.info(section)
    return raw


def _text(node: RedisServer, *command: str) -> str:
    """The reply of ``command`` as text (CLUSTER INFO, CLUSTER NODES), unparsed."""
    reply: Any = node.client().execute_command(*command)  # type: ignore[no-untyped-call]
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _cluster_info(node: RedisServer) -> dict[str, str]:
    text = _text(node, "CLUSTER", "INFO")
    return dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)


class ClusterNodeView:
    """One line of CLUSTER NODES."""

    def __init__(self, line: str) -> None:
        parts = line.split()
        self.id = parts[0]
        self.port = int(parts[1].split("@")[0].rsplit(":", 1)[1])
        self.flags = set(parts[2].split(","))
        self.master_id = parts[3] if parts[3] != "-" else None
        self.slots: list[tuple[int, int]] = []
        for item in parts[8:]:
            if item.startswith("["):
                continue  # a slot being migrated
            start, _, end = item.partition("-")
            self.slots.append((int(start), int(end or start)))

    @property
    def is_master(self) -> bool:
        return "master" in self.flags and "fail" not in self.flags

    def owns(self, slot: int) -> bool:
        return any(a <= slot <= b for a, b in self.slots)


class ClusterServers:
    """A local Redis Cluster of real redis-server processes (module doc)."""

    def __init__(
        self,
        masters: int = 3,
        replicas: int = 1,
        *,
        node_timeout_ms: int = 1000,
        password: str | None = None,
        tls: bool = False,
    ) -> None:
        self.masters = masters
        self.replicas = replicas
        self.node_timeout_ms = node_timeout_ms
        self.password = password
        self.nodes: list[RedisServer] = []
        #: With TLS: one certificate for every node (cert.pem is the CA too).
        self.certs = tempfile.mkdtemp(prefix="taskq-cluster-tls-") if tls else ""
        if tls:
            make_certificate(self.certs)

    def _cli_options(self) -> list[str]:
        """redis-cli options to reach the nodes (password, TLS)."""
        options = ["-a", self.password, "--no-auth-warning"] if self.password else []
        if self.certs:
            options += ["--tls", "--cacert", f"{self.certs}/cert.pem"]
        return options

    # -- life ---------------------------------------------------------------------
    def start(self) -> ClusterServers:
        """Start every node, create the cluster, wait until it is ready."""
        taken: set[int] = set()
        for _ in range(self.masters * (1 + self.replicas)):
            port = cluster_port(taken)
            taken |= {port, port + 10000}
            args = [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{port}.conf",
                "--cluster-node-timeout", str(self.node_timeout_ms),
                *FAST_SYNC,
            ]  # fmt: skip
            if self.certs:
                args += ["--tls-cluster", "yes", "--tls-replication", "yes"]
            node = RedisServer(
                port=port,
                extra_args=args,
                password=self.password,
                tls=bool(self.certs),
                certificate_dir=self.certs or None,
            )
            self.nodes.append(node.start())
        command = [
            shutil.which("redis-cli") or "redis-cli", "--cluster", "create",
            *[f"{HOST}:{n.port}" for n in self.nodes],
            "--cluster-replicas", str(self.replicas), "--cluster-yes",
            *self._cli_options(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            self.close()
            raise RuntimeError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        self.wait_ready()
        return self

    def close(self) -> None:
        for node in self.nodes:
            node.close()
        self.nodes = []
        if self.certs:
            shutil.rmtree(self.certs, ignore_errors=True)

    def live(self) -> list[RedisServer]:
        return [n for n in self.nodes if n.process is not None and n.process.poll() is None]

    def wait_ready(self, timeout: float = 60) -> float:
        """Wait until every live node says cluster_state:ok and agrees on the masters.

        And until every replica is in sync with its master.
        """

        def ready() -> bool:
            live = self.live()
            views = []
            for node in live:
                info = _cluster_info(node)
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                    return False
                views.append(sorted(v.port for v in self.view(node) if v.is_master and v.slots))
                role = _info(node.client(), "replication")
                if role.get("role") == "slave" and role.get("master_link_status") != "up":
                    return False
            return all(v == views[0] for v in views)

        return wait_until(ready, timeout, "the cluster to be ready (cluster_state:ok everywhere)")

    # -- what the cluster looks like ----------------------------------------------------
    def view(self, node: RedisServer | None = None) -> list[ClusterNodeView]:
        """CLUSTER NODES as ``node`` (default: any live node) sees it."""
        text = _text(node or self.live()[0], "CLUSTER", "NODES")
        return [ClusterNodeView(line) for line in text.splitlines() if line.strip()]

    def node(self, port: int) -> RedisServer:
        return next(n for n in self.nodes if n.port == port)

    def node_id(self, server: RedisServer) -> str:
        return next(v.id for v in self.view() if v.port == server.port)

    def master_of_slot(self, slot: int) -> RedisServer:
        view = next(v for v in self.view() if v.is_master and v.owns(slot))
        return self.node(view.port)

    def master_of_key(self, key: str) -> RedisServer:
        """The master that serves ``key`` now (by its hash tag's slot)."""
        return self.master_of_slot(key_slot(key.encode()))

    def primaries(self) -> list[RedisServer]:
        return [self.node(v.port) for v in self.view() if v.is_master and v.slots]

    def slots_of(self, server: RedisServer) -> list[tuple[int, int]]:
        return next(v.slots for v in self.view() if v.port == server.port)

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming every node (any of them can introduce the rest)."""
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"{HOST}:{n.port}" for n in self.nodes)
        if self.certs:
            return f"rediss+cluster://{auth}{hosts}/?ssl_ca_certs={self.certs}/cert.pem"
        return f"redis+cluster://{auth}{hosts}/"

    def flush(self) -> None:
        """Delete every key on every master."""
        for node in self.primaries():
            node.client().flushall()

    # -- faults ---------------------------------------------------------------------
    def kill(self, server: RedisServer) -> None:
        """SIGKILL one node, as a crash would."""
        server.kill()

    def wait_failover(self, dead: RedisServer, timeout: float = 60) -> tuple[RedisServer, float]:
        """Wait until a replica has taken over ``dead``'s slots and the cluster is ok again.

        Returns the new master and how long the wait took.
        """
        survivors = [n for n in self.live() if n is not dead]
        slots: list[tuple[int, int]] = []

        def taken_over() -> bool:
            nonlocal slots
            views = self.view(survivors[0])
            if not slots:
                slots = next(v.slots for v in views if v.port == dead.port)
            first = slots[0][0]
            owner = next((v for v in views if v.is_master and v.owns(first)), None)
            if owner is None or owner.port == dead.port:
                return False
            return all(_cluster_info(n).get("cluster_state") == "ok" for n in survivors)

        took = wait_until(taken_over, timeout, f"a replica to take over from port {dead.port}")
        return self.master_of_slot(slots[0][0]), took

    def rejoin(self, server: RedisServer, timeout: float = 60) -> None:
        """Start a killed node again; it comes back as a replica. Waits until all is in sync."""
        server.start()
        self.wait_ready(timeout)

    def reshard(self, source: RedisServer, target: RedisServer, slots: int) -> str:
        """Move ``slots`` hash slots from ``source`` to ``target`` with redis-cli.

        ``redis-cli --cluster reshard`` takes the source's lowest slots
        first. Returns its output.
        """
        command = [
            shutil.which("redis-cli") or "redis-cli",
            "--cluster", "reshard", f"{HOST}:{target.port}",
            "--cluster-from", self.node_id(source), "--cluster-to", self.node_id(target),
            "--cluster-slots", str(slots), "--cluster-yes",
            *self._cli_options(),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"redis-cli --cluster reshard failed:\n{done.stdout}{done.stderr}")
        return done.stdout


class SentinelProcess:
    """One ``redis-server --sentinel`` on 127.0.0.1 and a free port."""

    def __init__(self, config: str, password: str | None = None, certs: str = "") -> None:
        self.port = free_port()
        while self.port in RESERVED:
            self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="taskq-sentinel-")
        self.password = password
        self.certs = certs
        listen = f"port {self.port}\n"
        if certs:  # TLS to clients and to the master (tls-replication)
            options = tls_args(certs)
            pairs = zip(options[0::2], options[1::2], strict=True)
            listen = f"port 0\ntls-port {self.port}\ntls-replication yes\n" + "".join(
                f"{name[2:]} {value}\n" for name, value in pairs
            )
        self.config = f"{listen}bind {HOST}\ndir {self.dir}\n" + config
        if password:
            self.config += f"requirepass {password}\nsentinel sentinel-pass {password}\n"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> SentinelProcess:
        path = os.path.join(self.dir, "sentinel.conf")
        with open(path, "w") as f:
            f.write(self.config)
        self.process = subprocess.Popen(
            [shutil.which("redis-server") or "redis-server", path, "--sentinel"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: bool(self.client().ping()), 10, f"the Sentinel on port {self.port}")
        return self

    def client(self) -> redis.Redis:
        tls: dict[str, Any] = {"ssl": True, "ssl_ca_certs": f"{self.certs}/cert.pem"}
        return redis.Redis(
            HOST,
            self.port,
            password=self.password,
            socket_connect_timeout=0.5,
            **(tls if self.certs else {}),
        )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class SentinelServers:
    """A master, a replica and three Sentinels watching them (module doc)."""

    service = "mymaster"

    def __init__(
        self,
        *,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        password: str | None = None,
        sentinel_password: str | None = None,
        tls: bool = False,
    ) -> None:
        self.count = sentinels
        self.down_after_ms = down_after_ms
        self.password = password
        self.sentinel_password = sentinel_password
        self.servers: list[RedisServer] = []
        self.sentinels: list[SentinelProcess] = []
        #: With TLS: one certificate for the servers and the Sentinels.
        self.certs = tempfile.mkdtemp(prefix="taskq-sentinel-tls-") if tls else ""
        if tls:
            make_certificate(self.certs)

    def _server(self, *args: str) -> RedisServer:
        extra = [*FAST_SYNC, *args]
        if self.certs:
            extra += ["--tls-replication", "yes"]
        return RedisServer(
            extra_args=extra,
            password=self.password,
            tls=bool(self.certs),
            certificate_dir=self.certs or None,
        )

    def start(self) -> SentinelServers:
        master = self._server().start()
        replica = self._server("--replicaof", HOST, str(master.port)).start()
        self.servers = [master, replica]
        self._wait_in_sync(replica)
        config = (
            f"sentinel monitor {self.service} {HOST} {master.port} 2\n"
            f"sentinel down-after-milliseconds {self.service} {self.down_after_ms}\n"
            # A Sentinel does not start a new failover of the same master within
            # twice this; short, so a test can fail over several times in a row.
            f"sentinel failover-timeout {self.service} 2000\n"
            f"sentinel parallel-syncs {self.service} 1\n"
        )
        if self.password:
            config += f"sentinel auth-pass {self.service} {self.password}\n"
        for _ in range(self.count):
            self.sentinels.append(
                SentinelProcess(config, self.sentinel_password, self.certs).start()
            )
        self.wait_ready()
        return self

    def close(self) -> None:
        for sentinel in self.sentinels:
            sentinel.close()
        for server in self.servers:
            server.close()
        self.sentinels, self.servers = [], []
        if self.certs:
            shutil.rmtree(self.certs, ignore_errors=True)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        hosts = ",".join(f"{HOST}:{s.port}" for s in self.sentinels)
        options = []
        if self.sentinel_password:
            options.append(f"sentinel_password={self.sentinel_password}")
        if self.certs:
            options.append(f"ssl_ca_certs={self.certs}/cert.pem")
        query = f"?{'&'.join(options)}" if options else ""
        scheme = "rediss+sentinel" if self.certs else "redis+sentinel"
        return f"{scheme}://{auth}{hosts}/{self.service}/0{query}"

    def master_port(self, sentinel: SentinelProcess | None = None) -> int:
        """The port of the master a Sentinel (the first by default) names now."""
        asked = sentinel or self.sentinels[0]
        reply: Any = asked.client().execute_command(  # type: ignore[no-untyped-call]
            "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service
        )
        return int(reply[1])

    def master(self) -> RedisServer:
        """The server the Sentinels name as master now."""
        port = self.master_port()
        return next(s for s in self.servers if s.port == port)

    def _wait_in_sync(self, replica: RedisServer, timeout: float = 30) -> None:
        wait_until(
            lambda: _info(replica.client(), "replication").get("master_link_status") == "up",
            timeout,
            f"the replica on port {replica.port} to be in sync",
        )

    def wait_ready(self, timeout: float = 60) -> float:
        """Wait until every Sentinel knows the master, its replica and the other Sentinels."""

        def ready() -> bool:
            master = self.master()
            for sentinel in self.sentinels:
                state: Any = sentinel.client().sentinel_master(self.service)
                if int(state["port"]) != master.port or state.get("is_sdown"):
                    return False
                if int(state["num-slaves"]) < len(self.servers) - 1:
                    return False
                if int(state["num-other-sentinels"]) < self.count - 1:
                    return False
                replicas: Any = sentinel.client().sentinel_slaves(self.service)
                if any(r.get("is_sdown") or r.get("is_odown") for r in replicas):
                    return False
            return True

        return wait_until(
            ready, timeout, "the Sentinels to know the master, replica and each other"
        )

    def kill_master(self) -> RedisServer:
        """SIGKILL the current master; returns it."""
        master = self.master()
        master.kill()
        return master

    def wait_failover(self, dead: RedisServer, timeout: float = 60) -> tuple[RedisServer, float]:
        """Wait until every Sentinel names a new master that says it is one.

        Returns the new master and how long the wait took.
        """

        def promoted() -> bool:
            ports = set()
            for sentinel in self.sentinels:
                ports.add(self.master_port(sentinel))
            if len(ports) != 1 or dead.port in ports:
                return False
            new = next(s for s in self.servers if s.port in ports)
            return bool(_info(new.client(), "replication").get("role") == "master")

        took = wait_until(promoted, timeout, f"a new master after port {dead.port} died")
        return self.master(), took

    def rejoin(self, server: RedisServer, timeout: float = 60) -> None:
        """Start a killed master again as a replica of the current master; wait until in sync."""
        master = self.master()
        args = [a for a in server.extra_args]
        if "--replicaof" in args:
            i = args.index("--replicaof")
            del args[i : i + 3]
        server.extra_args = [*args, "--replicaof", HOST, str(master.port)]
        server.start()
        self._wait_in_sync(server, timeout)
        self.wait_ready(timeout)


__all__ = [
    "ClusterServers",
    "SentinelProcess",
    "SentinelServers",
    "cluster_port",
    "wait_until",
]
