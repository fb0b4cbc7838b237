"""Django settings for the test suite.

The broker URL comes from the environment: the test session starts its own
redis-server and exports TASKQ_BROKER_URL before Django loads, and worker
subprocesses inherit it. TASKQ_TEST_DB=postgres runs the ORM tests on
PostgreSQL (127.0.0.1:5432 by default; see TASKQ_TEST_PG_* below).
"""

import os
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "tests-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "tests.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_taskq",
    "tests.testapp",
    "tests.faults",  # the fault tests' recording tasks (tests/faults/tasks.py)
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "/static/"

_worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
if os.environ.get("TASKQ_TEST_DB") == "postgres":
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("TASKQ_TEST_PG_NAME", "taskq"),
            "USER": os.environ.get("TASKQ_TEST_PG_USER", "postgres"),
            "PASSWORD": os.environ.get("TASKQ_TEST_PG_PASSWORD", ""),
            "HOST": os.environ.get("TASKQ_TEST_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("TASKQ_TEST_PG_PORT", "5432"),
            "TEST": {"NAME": f"test_taskq_{_worker}"},
        }
    }
else:
    # A file, not :memory:, so worker and beat subprocesses see the test data
    # (they are given its exact path in TASKQ_TEST_DB_NAME). A directory of
    # this process's own, so two test sessions on one machine never share it.
    _db_dir = os.environ.get("TASKQ_TEST_DB_DIR", "")
    if not _db_dir and not os.environ.get("TASKQ_TEST_DB_NAME"):
        import atexit
        import shutil
        import tempfile

        _db_dir = tempfile.mkdtemp(prefix="taskq-tests-")
        atexit.register(shutil.rmtree, _db_dir, ignore_errors=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.path.join(_db_dir, f"taskq-tests-{_worker}.sqlite3"),
            "TEST": {"NAME": os.path.join(_db_dir, f"taskq-tests-{_worker}-test.sqlite3")},
        }
    }

# Set by tests/conftest.py to the session's private redis-server; the fallback
# is a port nothing listens on, so a test never touches a Redis it does not own.
# Subprocesses (workers, beat) started by a test use that test's database.
if os.environ.get("TASKQ_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["TASKQ_TEST_DB_NAME"]

TASKQ_BROKER_URL = os.environ.get("TASKQ_BROKER_URL", "redis://127.0.0.1:1/0")
TASKQ_KEY_PREFIX = os.environ.get("TASKQ_KEY_PREFIX", "taskq")
TASKQ_WORKER_HEARTBEAT_TIMEOUT = float(os.environ.get("TASKQ_WORKER_HEARTBEAT_TIMEOUT", "6"))
TASKQ_MAX_DELIVERIES = int(os.environ.get("TASKQ_MAX_DELIVERIES", "3"))
TASKQ_WORKER_TERMINATE_GRACE = float(os.environ.get("TASKQ_WORKER_TERMINATE_GRACE", "10"))
TASKQ_BROKER_MIN_REPLICAS = int(os.environ.get("TASKQ_BROKER_MIN_REPLICAS", "0"))
TASKQ_EVENTS = os.environ.get("TASKQ_EVENTS", "1") != "0"
TASKQ_EVENTS_MAXLEN = int(os.environ.get("TASKQ_EVENTS_MAXLEN", "100000"))
TASKQ_ROUTES = {"tests.testapp.tasks.routed_*": "routed"}
# Worker subprocesses of the metrics tests are given a token this way.
TASKQ_METRICS_TOKEN = os.environ.get("TASKQ_METRICS_TOKEN") or None
TASKQ_PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0.05, "interval_step": 0.05}
# Worker subprocesses of the codec tests say what they decode, and which
# optional library they lack (its import then fails, as when not installed).
TASKQ_ACCEPT_CONTENT = os.environ.get("TASKQ_TEST_ACCEPT_CONTENT", "json").split(",")
for _missing in filter(None, os.environ.get("TASKQ_TEST_WITHOUT", "").split(",")):
    sys.modules[_missing] = None  # type: ignore[assignment]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_taskq": {"handlers": ["console"], "level": "INFO"}},
}

# Django's tasks framework (Django 6.0+) through django_taskq (tests/django_tasks):
# every queue allowed, as django_taskq itself allows.
TASKS = {"default": {"BACKEND": "django_taskq.backends.TaskqBackend", "QUEUES": []}}
