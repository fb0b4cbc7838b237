"""Settings of the example project under docker-compose: PostgreSQL and Redis from the environment.

The example project's own settings (SQLite, DEBUG) with what a container
deployment changes; every value comes from the environment that
docker-compose.yml sets.
"""

import os

from example_project.settings import *  # noqa: F403

SECRET_KEY = os.environ["DJANGO_SECRET_KEY"]
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT", "/app/staticfiles")

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "HOST": os.environ.get("POSTGRES_HOST", "postgres"),
        "PORT": os.environ.get("POSTGRES_PORT", "5432"),
        "NAME": os.environ.get("POSTGRES_DB", "taskq"),
        "USER": os.environ.get("POSTGRES_USER", "taskq"),
        "PASSWORD": os.environ.get("POSTGRES_PASSWORD", ""),
        "CONN_MAX_AGE": 60,
    }
}

TASKQ_BROKER_URL = os.environ["TASKQ_BROKER_URL"]
