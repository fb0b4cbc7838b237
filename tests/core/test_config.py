"""Connection settings and `manage.py check` messages."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_taskq.broker import keys
from django_taskq.broker.connection import get_broker, redact
from django_taskq.checks import check_settings
from django_taskq.exceptions import BrokerUnavailable, ImproperlyConfiguredTaskq
from django_taskq.testing import RedisServer
from tests.testapp.tasks import add


def _ids(messages: list[Any]) -> set[str]:
    return {m.id for m in messages}


def test_unknown_setting_gets_a_close_match() -> None:
    with override_settings(TASKQ_BROKER_ULR="redis://x"):
        [msg] = [m for m in check_settings() if m.id == "taskq.W001"]
    assert "TASKQ_BROKER_ULR" in msg.msg and msg.hint == "Did you mean TASKQ_BROKER_URL?"


@pytest.mark.django_db  # Django 6.1's check also runs database checks
def test_bad_broker_url_is_a_check_error() -> None:
    with override_settings(TASKQ_BROKER_URL="http://localhost:6379"):
        messages = check_settings()
        assert "taskq.E001" in _ids(messages)
        with pytest.raises(SystemCheckError, match="TASKQ_BROKER_URL"):
            call_command("check")
        with pytest.raises(ImproperlyConfiguredTaskq, match="is not a Redis URL"):
            get_broker()


def test_pickle_is_warned_about() -> None:
    with override_settings(TASKQ_ACCEPT_CONTENT=["json", "pickle"]):
        assert "taskq.W002" in _ids(check_settings())


def test_missing_cache_alias_is_an_error() -> None:
    with override_settings(TASKQ_REDIS_CACHE_ALIAS="nope"):
        assert "taskq.E002" in _ids(check_settings())


def test_clean_settings_have_no_messages() -> None:
    assert check_settings() == []


def test_redact_hides_the_password() -> None:
    assert redact("redis://user:s3cret@host:6380/2") == "redis://user:***@host:6380/2"
    assert redact("redis://host:6379/0") == "redis://host:6379/0"


def test_password_acl_user_and_db_from_url(redis_server: RedisServer) -> None:
    admin = redis_server.client()
    admin.execute_command("ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all")
    try:
        url = f"redis://app:pw@127.0.0.1:{redis_server.port}/3"
        with override_settings(TASKQ_BROKER_URL=url):
            result = add.delay(1, 1)
            assert get_broker().connection_pool.connection_kwargs["db"] == 3
        assert redis_server.client().execute_command("SELECT", 3)
        db3 = type(admin)(port=redis_server.port, db=3)
        assert db3.exists(keys.result(result.id))
        db3.flushdb()
    finally:
        admin.execute_command("ACL", "DELUSER", "app")


def test_cache_alias_reuses_the_django_redis_pool(redis_server: RedisServer) -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "redis": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{redis_server.port}/4",
        },
    }
    with override_settings(CACHES=caches, TASKQ_BROKER_URL=None, TASKQ_REDIS_CACHE_ALIAS="redis"):
        from django_redis import get_redis_connection

        assert get_broker().connection_pool is get_redis_connection("redis").connection_pool
        result = add.delay(2, 2)
        assert type(get_broker())(port=redis_server.port, db=4).exists(keys.result(result.id))
        get_broker().flushdb()


def test_key_prefix_separates_projects(broker: Any) -> None:
    with override_settings(TASKQ_KEY_PREFIX="other"):
        add.delay(1, 1)
    assert broker.exists("{other:default}:q:5")
    assert not broker.exists("{taskq:default}:q:5")


def test_unreachable_redis_raises_broker_unavailable_quickly() -> None:
    from django_taskq.testing import free_port

    with override_settings(TASKQ_BROKER_URL=f"redis://127.0.0.1:{free_port()}/0"):
        started = time.monotonic()
        with pytest.raises(BrokerUnavailable, match="tests.testapp.tasks.add.*unreachable"):
            add.delay(1, 1)
        # Bounded by TASKQ_PUBLISH_RETRY (tests: 2 retries, short intervals): never a hang.
        assert time.monotonic() - started < 10


def test_separate_result_backend(redis_server: RedisServer) -> None:
    other = RedisServer().start()
    try:
        with override_settings(TASKQ_RESULT_BACKEND=other.url):
            result = add.delay(1, 2)
            bulk = add.delay_many([(1, 1), (2, 2), (3, 3)])
        assert other.client().exists(keys.result(result.id))
        assert not redis_server.client().exists(keys.result(result.id))
        for r in bulk:  # PENDING on the result Redis, one pipeline for the batch
            assert other.client().exists(keys.result(r.id))
            assert not redis_server.client().exists(keys.result(r.id))
    finally:
        other.close()
