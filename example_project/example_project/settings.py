"""Settings of the example project: django_taskq with a demo app on SQLite.

Run it from the repository root with ``python manage.py ...``. The broker is
``TASKQ_BROKER_URL`` from the environment (``scripts/demo`` sets it to the
Redis it found or started), else a local Redis on the default port.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent  # example_project/

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-project-not-secret")
DEBUG = True
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_taskq",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The admin in the browser's language: django_taskq's pages are in English,
    # Japanese, Spanish, Brazilian Portuguese and Simplified Chinese.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_project.urls"
WSGI_APPLICATION = "example_project.wsgi.application"

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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": BASE_DIR / "db.sqlite3",
    }
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- django_taskq ----------------------------------------------------------
TASKQ_BROKER_URL = os.environ.get("TASKQ_BROKER_URL", "redis://127.0.0.1:6379/0")
# Keep the demo's keys apart from anything else in a shared Redis.
TASKQ_KEY_PREFIX = os.environ.get("TASKQ_KEY_PREFIX", "taskq-demo")
# Each worker process runs up to 10 ``async def`` tasks at once on its event
# loop (demo.tasks.look_up); plain tasks still run one at a time each.
TASKQ_WORKER_ASYNC_CONCURRENCY = 10
# Routing by task name or glob, e.g. send slow work to its own queue and run
# a worker with ``-Q default,slow`` (consumed in that order of preference):
# TASKQ_ROUTES = {"demo.tasks.slow_*": "slow"}

# Who may call the HTTP endpoints under /tasks/ (docs/http-endpoints.md):
# here, staff logged in to the admin. A scheduler would send a token instead:
# {"HANDLER": "django_taskq.endpoints.auth.SharedSecretAuth",
#  "OPTIONS": {"TOKEN_ENV": "TASKQ_CRON_TOKEN"}}
TASKQ_AUTH_HANDLERS = ["django_taskq.endpoints.auth.StaffOnlyAuth"]

# Periodic tasks for ``manage.py taskq_beat`` (or ``taskq_worker -B``):
#
# from datetime import timedelta
# from django_taskq.schedules import crontab, schedule
#
# TASKQ_BEAT_SCHEDULE = {
#     "add-every-30s": {
#         "task": "demo.tasks.add",
#         "schedule": schedule(timedelta(seconds=30)),
#         "args": (2, 2),
#     },
#     "nightly-report": {
#         "task": "demo.tasks.report",
#         "schedule": crontab(hour=3, minute=0),
#     },
# }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"django_taskq": {"handlers": ["console"], "level": "INFO"}},
}
