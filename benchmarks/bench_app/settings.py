"""Django settings of the benchmark (``python -m benchmarks.bench`` sets them).

The broker URL comes from the environment (the benchmark starts a private
redis-server and exports ``TASKQ_BROKER_URL``); the fallback is a port nothing
listens on, so the benchmark never touches a Redis it does not own. SQLite
lives in ``TASKQ_BENCH_DIR`` (a temporary directory made by the benchmark).
"""

from __future__ import annotations

import os
import tempfile

SECRET_KEY = "django-taskq-bench-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = ["django_taskq", "benchmarks.bench_app"]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.path.join(
            os.environ.get("TASKQ_BENCH_DIR") or tempfile.gettempdir(), "taskq-bench.sqlite3"
        ),
    }
}

TASKQ_BROKER_URL = os.environ.get("TASKQ_BROKER_URL", "redis://127.0.0.1:1/0")
TASKQ_KEY_PREFIX = "taskqbench"

# TASKQ_EVENTS=0 / TASKQ_METRICS=0 / TASKQ_HISTORY=0 in the environment
# measure the hot path without task events / counters / the workers' history
# recorder (docs/benchmarks.md, "Task events and history on and off").
TASKQ_EVENTS = os.environ.get("TASKQ_EVENTS", "1") != "0"
TASKQ_METRICS = os.environ.get("TASKQ_METRICS", "1") != "0"
TASKQ_HISTORY = os.environ.get("TASKQ_HISTORY", "1") != "0"
