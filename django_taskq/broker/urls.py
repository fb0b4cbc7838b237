"""Redis URLs for the three topologies: one Redis, Sentinel, Cluster.

``TASKQ_BROKER_URL`` and ``TASKQ_RESULT_BACKEND`` name one of:

- ``redis://[user:password@]host:port/db`` (``rediss://`` for TLS, or
  ``unix:///path/to/socket``): one Redis, parsed by redis-py itself;
- ``redis+sentinel://[[user]:password@]host1:26379,host2:26379/<master name>[/<db>]``:
  the master that the Sentinel processes name, followed through failovers.
  The user and password are the master's; the Sentinel processes are given
  theirs with the query options ``sentinel_username`` and
  ``sentinel_password``, because redis-py never passes the master's
  password on to them (and most set-ups give Sentinel none);
- ``redis+cluster://[user:password@]host1:7000,host2:7001/``: a Redis Cluster,
  found from any of the listed nodes.

``rediss+sentinel://`` and ``rediss+cluster://`` use TLS, for the Sentinel
processes and the data nodes alike (one CA). Other query options
(``ssl_ca_certs``, ``socket_timeout``...) are redis-py's URL options and
apply to the data connections. A malformed URL raises
``ImproperlyConfiguredTaskq`` naming the setting, with a correct example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

from django_taskq.exceptions import ImproperlyConfiguredTaskq

Topology = Literal["single", "sentinel", "cluster"]

SINGLE_SCHEMES = {"redis", "rediss", "unix"}
SENTINEL_SCHEMES = {"redis+sentinel", "rediss+sentinel"}
CLUSTER_SCHEMES = {"redis+cluster", "rediss+cluster"}

SENTINEL_PORT = 26379
CLUSTER_PORT = 6379

EXAMPLES: dict[Topology, str] = {
    "single": "redis://:password@10.0.0.5:6379/0",
    "sentinel": "redis+sentinel://:password@10.0.0.5:26379,10.0.0.6:26379/mymaster/0",
    "cluster": "redis+cluster://:password@10.0.0.5:7000,10.0.0.6:7001/",
}

#: Query options that configure the Sentinel processes, not the master.
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")


@dataclass(frozen=True)
class RedisTarget:
    """What a URL names: the topology, its seed nodes and the data connections' options."""

    topology: Topology
    url: str
    tls: bool = False
    #: Sentinel processes (sentinel) or seed nodes (cluster); empty for one Redis.
    nodes: tuple[tuple[str, int], ...] = ()
    #: The master's name (sentinel only).
    service: str = ""
    db: int = 0
    #: redis-py keyword arguments for the data connections (password, ssl_*...).
    options: dict[str, Any] = field(default_factory=dict)
    #: Keyword arguments for the connections to the Sentinel processes.
    sentinel_options: dict[str, Any] = field(default_factory=dict)


def topology_of(url: str) -> Topology:
    """The topology a URL's scheme names (no validation beyond the scheme)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in SENTINEL_SCHEMES:
        return "sentinel"
    if scheme in CLUSTER_SCHEMES:
        return "cluster"
    return "single"


def redact(url: str) -> str:
    """``url`` with its passwords (the userinfo's and ``sentinel_password``) shown as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    userinfo, at, hosts = netloc.rpartition("@")
    if at and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{hosts}"
    query = parts.query
    if "sentinel_password" in query:
        pairs = [
            (k, "***" if k == "sentinel_password" else v)
            for k, v in parse_qsl(query, keep_blank_values=True)
        ]
        query = urlencode(pairs, safe="*/")
    text = f"{parts.scheme}://{netloc}{parts.path}"
    if query:
        text += f"?{query}"
    if parts.fragment:
        text += f"#{parts.fragment}"
    return text


def _fail(setting: str, url: str, problem: str, topology: Topology) -> ImproperlyConfiguredTaskq:
    return ImproperlyConfiguredTaskq(
        f"{setting}={redact(url)!r}: {problem}. A correct example: {EXAMPLES[topology]}"
    )


def parse(url: str, setting: str) -> RedisTarget:
    """What ``url`` names; ImproperlyConfiguredTaskq naming ``setting`` if it is malformed."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _fail(setting, url, f"not a URL ({exc})", "single") from None
    scheme = parts.scheme.lower()
    if scheme in SINGLE_SCHEMES:
        _check_single(url, setting, parts)
        return RedisTarget("single", url, tls=scheme == "rediss")
    if scheme in SENTINEL_SCHEMES:
        return _parse_sentinel(url, setting)
    if scheme in CLUSTER_SCHEMES:
        return _parse_cluster(url, setting)
    raise ImproperlyConfiguredTaskq(
        f"{setting}={redact(url)!r} is not a Redis URL: use redis://[user:password@]host:port/db "
        "(rediss:// for TLS, or unix:///path/to/socket), "
        "redis+sentinel://[:password@]host1:26379,host2:26379/<master name>/<db> for Sentinel, "
        "or redis+cluster://[user:password@]host1:7000,host2:7001/ for Redis Cluster "
        "(rediss+sentinel://, rediss+cluster:// with TLS)"
    )


def _check_single(url: str, setting: str, parts: SplitResult) -> None:
    """Refuse what redis-py would refuse later, or silently ignore, in a one-Redis URL.

    redis-py's ``from_url`` drops a db path that is not a number
    (``redis://host/prod`` connects to db 0) and takes port 0 as no port, so
    a typo would quietly point the project at another database.
    """
    from redis.connection import parse_url

    try:
        parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise _fail(setting, url, str(exc).rstrip("."), "single") from None
    if parts.scheme.lower() == "unix":
        return
    if parts.port == 0:
        raise _fail(setting, url, "the port is 0", "single")
    path = parts.path.strip("/")
    if path and not (path.isascii() and path.isdigit()):
        raise _fail(setting, url, f"the db {path!r} after the host is not a number", "single")


def _nodes(
    url: str, setting: str, hosts: str, default_port: int, topology: Topology
) -> tuple[tuple[str, int], ...]:
    found: list[tuple[str, int]] = []
    for raw in hosts.split(","):
        item = raw.strip()
        if not item:
            raise _fail(setting, url, "an empty host in the host list", topology)
        if item.startswith("["):  # [IPv6]:port
            host, _, rest = item[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else ""
        else:
            host, _, port_text = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise _fail(setting, url, f"no host name in {item!r}", topology)
        port = default_port
        if port_text:
            if not port_text.isdigit() or not 0 < int(port_text) < 65536:
                raise _fail(setting, url, f"the port of {item!r} is not a number 1-65535", topology)
            port = int(port_text)
        found.append((host, port))
    return tuple(found)


def _credentials(netloc: str) -> tuple[str, dict[str, Any]]:
    """(the host list, {username, password}) of a netloc with an optional userinfo."""
    userinfo, at, hosts = netloc.rpartition("@")
    creds: dict[str, Any] = {}
    if at:
        user, colon, password = userinfo.partition(":")
        if user:
            creds["username"] = unquote(user)
        if colon:
            creds["password"] = unquote(password)
    return hosts, creds


def _query_options(
    url: str, setting: str, tls: bool, query: str, topology: Topology
) -> dict[str, Any]:
    """redis-py's own parsing and type casting of the URL query options."""
    from redis.connection import parse_url

    if not query:
        return {}
    scheme = "rediss" if tls else "redis"
    try:
        parsed: dict[str, Any] = parse_url(f"{scheme}://placeholder:1/0?{query}")  # type: ignore[no-untyped-call]
    except ValueError as exc:
        raise _fail(setting, url, f"a query option is invalid ({exc})", topology) from None
    for name in ("host", "port", "db", "connection_class"):
        parsed.pop(name, None)
    return parsed


def _split_sentinel_options(query: str) -> tuple[str, dict[str, Any]]:
    """The query without ``sentinel_*`` options, and those options as keyword arguments."""
    rest: list[tuple[str, str]] = []
    sentinel: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in SENTINEL_OPTIONS:
            sentinel[key[len("sentinel_") :]] = value
        else:
            rest.append((key, value))
    return urlencode(rest, quote_via=quote), sentinel


def _parse_sentinel(url: str, setting: str) -> RedisTarget:
    parts = urlsplit(url)
    tls = parts.scheme.lower().startswith("rediss")
    hosts, creds = _credentials(parts.netloc)
    if not hosts:
        raise _fail(setting, url, "no Sentinel host", "sentinel")
    nodes = _nodes(url, setting, hosts, SENTINEL_PORT, "sentinel")
    path = [unquote(p) for p in parts.path.split("/") if p]
    if not path:
        raise _fail(setting, url, "no master name after the hosts", "sentinel")
    if len(path) > 2:
        raise _fail(setting, url, "the path must be /<master name>[/<db>]", "sentinel")
    db = 0
    if len(path) == 2:
        if not path[1].isdigit():
            raise _fail(setting, url, f"the db {path[1]!r} is not a number", "sentinel")
        db = int(path[1])
    query, sentinel_options = _split_sentinel_options(parts.query)
    options = _query_options(url, setting, tls, query, "sentinel")
    options.update(creds)
    if "db" in dict(parse_qsl(query)):
        raise _fail(setting, url, "give the db in the path, not as ?db=", "sentinel")
    if tls:
        # One CA for the whole topology: the Sentinel processes speak TLS too.
        sentinel_options["ssl"] = True
        sentinel_options.update({k: v for k, v in options.items() if k.startswith("ssl_")})
    return RedisTarget(
        "sentinel",
        url,
        tls=tls,
        nodes=nodes,
        service=path[0],
        db=db,
        options=options,
        sentinel_options=sentinel_options,
    )


def _parse_cluster(url: str, setting: str) -> RedisTarget:
    parts = urlsplit(url)
    tls = parts.scheme.lower().startswith("rediss")
    hosts, creds = _credentials(parts.netloc)
    if not hosts:
        raise _fail(setting, url, "no cluster node", "cluster")
    nodes = _nodes(url, setting, hosts, CLUSTER_PORT, "cluster")
    path = parts.path.strip("/")
    if path not in ("", "0"):
        raise _fail(
            setting,
            url,
            f"Redis Cluster has only db 0, so the path must be / (not /{path})",
            "cluster",
        )
    query = parts.query
    if any(key in SENTINEL_OPTIONS for key, _ in parse_qsl(query)):
        raise _fail(setting, url, "sentinel_* options belong to redis+sentinel:// URLs", "cluster")
    options = _query_options(url, setting, tls, query, "cluster")
    options.update(creds)
    return RedisTarget("cluster", url, tls=tls, nodes=nodes, options=options)


__all__ = ["RedisTarget", "Topology", "parse", "redact", "topology_of"]
