"""tests.settings configured as docs/migrating-from-django-tasks-redis.md's "after" example.

The ``TASKS`` setting is read from that page's example (only its Redis URL is
replaced by the test session's), and the ``TASKQ_*`` settings its OPTIONS give
are removed, so a worker with these settings finds Redis, its key prefix, the
result TTL and the rest only through the backend's OPTIONS. Used by the
workers of tests/django_tasks/test_options.py.
"""

import os
import re
from pathlib import Path
from typing import Any

from tests.settings import *  # noqa: F403

DOC = Path(__file__).resolve().parent.parent / "docs" / "migrating-from-django-tasks-redis.md"


def example(name: str) -> dict[str, Any]:
    """The ``TASKS`` of the page's code block marked ``<!-- tasks-example: NAME -->``."""
    found = re.search(
        rf"<!-- tasks-example: {name} -->\n```python\n(.*?)```", DOC.read_text(), re.DOTALL
    )
    if found is None:
        raise LookupError(f"{DOC.name} has no block marked tasks-example: {name}")
    space: dict[str, Any] = {}
    exec(found.group(1), space)  # the page's own example, nothing else
    return space["TASKS"]


TASKS = example("after")
TASKS["default"]["OPTIONS"]["BROKER_URL"] = os.environ.get(
    "TASKQ_BROKER_URL", "redis://127.0.0.1:1/0"
)
for _name in TASKS["default"]["OPTIONS"]:
    globals().pop("TASKQ_" + _name, None)

#: The key prefix the OPTIONS set (tests look for it in Redis).
OPTIONS_KEY_PREFIX = TASKS["default"]["OPTIONS"]["KEY_PREFIX"]
