"""The Lua scripts shipped in ``lua/``, each with a plain Python method.

Each script is read once per process and registered with redis-py, which
calls it by ``EVALSHA`` and reloads it on ``NOSCRIPT`` (after a Redis
restart), inside pipelines too.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    """Text of ``lua/<name>.lua``."""
    return resources.files("django_taskq.broker").joinpath("lua", f"{name}.lua").read_text()


def script(client: redis.Redis | Any, name: str) -> Script:
    """A callable Script for ``name``, bound to ``client``'s registry.

    Script objects carry only the SHA and source, so one per (client, name)
    is cached on the client itself.
    """
    registry: dict[str, Script] | None = getattr(client, "_taskq_scripts", None)
    if registry is None:
        registry = {}
        setattr(client, "_taskq_scripts", registry)  # noqa: B010 - cache on the client
    found = registry.get(name)
    if found is None:
        found = client.register_script(source(name))
        registry[name] = found
    return found


def queue_evalsha(
    pipe: Any, client: redis.Redis, name: str, keys: list[Any], args: list[Any]
) -> None:
    """Queue an EVALSHA of ``name`` on ``pipe`` without redis-py's SCRIPT EXISTS round trip.

    A Script called on a pipeline makes ``execute()`` first ask Redis whether
    the script is loaded: one more round trip per flush. The caller of this
    function instead catches ``redis.exceptions.NoScriptError`` from
    ``execute()`` (Redis restarted or SCRIPT FLUSH), calls ``load()`` and
    sends again what used the script (the pipeline's other commands have run).
    """
    pipe.evalsha(script(client, name).sha, len(keys), *keys, *args)


def load(client: redis.Redis, *names: str) -> None:
    """SCRIPT LOAD the named scripts (after a NoScriptError)."""
    for name in names:
        client.script_load(source(name))


def names() -> list[str]:
    """Every script shipped in ``lua/``."""
    folder = resources.files("django_taskq.broker").joinpath("lua")
    return sorted(f.name[:-4] for f in folder.iterdir() if f.name.endswith(".lua"))


def load_all(client: redis.Redis) -> None:
    """SCRIPT LOAD every script (after a NoScriptError from a pipeline of bare EVALSHAs)."""
    load(client, *names())
