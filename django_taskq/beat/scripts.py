"""Beat's own Lua scripts (``beat/lua/``), here withdrawing runs sent ahead.

Each script is read once per process and registered with redis-py on the
client it runs on (redis-py calls it by EVALSHA and loads it again after a
NOSCRIPT, so a restarted Redis needs nothing from us). lease.py still has
its own copy of these few lines for the lease scripts (it is being changed
on another branch); it can use this module once both are merged.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

import redis
from redis.commands.core import Script


@cache
def source(name: str) -> str:
    """Text of ``beat/lua/<name>.lua``."""
    return resources.files("django_taskq.beat").joinpath("lua", f"{name}.lua").read_text()


def script(client: redis.Redis, name: str) -> Script:
    """The Script ``name`` registered on ``client`` (cached on the client)."""
    registry: dict[str, Script] | None = getattr(client, "_taskq_beat_scripts", None)
    if registry is None:
        registry = {}
        setattr(client, "_taskq_beat_scripts", registry)  # noqa: B010 - cache on the client
    found = registry.get(name)
    if found is None:
        found = client.register_script(source(name))
        registry[name] = found
    return found
