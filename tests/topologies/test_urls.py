"""redis+sentinel:// and redis+cluster:// URLs: what they name, and the errors for bad ones.

No server is needed: these read URLs and settings only.
"""

from __future__ import annotations

import pytest
from django.test import override_settings

from django_taskq.broker import urls
from django_taskq.broker.connection import redact
from django_taskq.checks import check_settings
from django_taskq.exceptions import ImproperlyConfiguredTaskq


def test_a_sentinel_url_names_the_sentinels_the_master_and_the_db() -> None:
    target = urls.parse(
        "redis+sentinel://:s3cret@10.0.0.1:26380,10.0.0.2/mymaster/3"
        "?socket_timeout=2.5&sentinel_password=sp",
        "TASKQ_BROKER_URL",
    )
    assert target.topology == "sentinel" and not target.tls
    assert target.nodes == (("10.0.0.1", 26380), ("10.0.0.2", 26379))  # 26379 by default
    assert (target.service, target.db) == ("mymaster", 3)
    assert target.options == {"password": "s3cret", "socket_timeout": 2.5}
    # The master's password is the master's; the Sentinels get their own.
    assert target.sentinel_options == {"password": "sp"}


def test_a_sentinel_url_with_tls_uses_it_for_the_sentinels_too() -> None:
    target = urls.parse(
        "rediss+sentinel://u:p@h:5000/main?ssl_ca_certs=/ca.pem", "TASKQ_RESULT_BACKEND"
    )
    assert target.tls and target.db == 0
    assert target.options == {"username": "u", "password": "p", "ssl_ca_certs": "/ca.pem"}
    assert target.sentinel_options == {"ssl": True, "ssl_ca_certs": "/ca.pem"}


def test_a_cluster_url_names_its_seed_nodes() -> None:
    target = urls.parse("redis+cluster://app:pw@10.0.0.1:7000,[::1]:7001,node3/", "X")
    assert target.topology == "cluster"
    assert target.nodes == (("10.0.0.1", 7000), ("::1", 7001), ("node3", 6379))
    assert target.options == {"username": "app", "password": "pw"}
    assert urls.parse("rediss+cluster://h:7000", "X").tls


@pytest.mark.parametrize(
    ("url", "problem", "example"),
    [
        ("redis+sentinel://h:26379", "no master name", "redis+sentinel://"),
        ("redis+sentinel://h:26379/m/x", "the db 'x' is not a number", "redis+sentinel://"),
        ("redis+sentinel://h:26379/m/0/extra", "the path must be", "redis+sentinel://"),
        ("redis+sentinel:///m/0", "no Sentinel host", "redis+sentinel://"),
        ("redis+sentinel://h:port/m", "is not a number 1-65535", "redis+sentinel://"),
        ("redis+sentinel://h,,k/m", "an empty host", "redis+sentinel://"),
        ("redis+sentinel://h/m?db=2", "give the db in the path", "redis+sentinel://"),
        ("redis+cluster://h:7000/2", "only db 0", "redis+cluster://"),
        ("redis+cluster:///", "no cluster node", "redis+cluster://"),
        ("redis+cluster://h:7000/?sentinel_password=x", "belong to redis+sentinel", "redis+"),
        ("redis+cluster://h:7000/?socket_timeout=soon", "a query option is invalid", "redis+"),
        # One Redis: redis-py connected to db 0 for a db path that is not a number.
        ("redis://h:6379/prod", "the db 'prod' after the host is not a number", "redis://"),
        ("redis://h:6379/0/extra", "the db '0/extra' after the host", "redis://"),
        ("redis://h:99999/0", "Port out of range", "redis://"),
        ("redis://h:port/0", "Port could not be cast", "redis://"),
        ("redis://h:0/0", "the port is 0", "redis://"),
        ("redis://h:6379/0?socket_timeout=soon", "Invalid value for 'socket_timeout'", "redis://"),
        ("unix:///run/redis.sock?db=x", "Invalid value for 'db'", "redis://"),
    ],
)
def test_a_malformed_url_names_the_setting_the_problem_and_a_correct_example(
    url: str, problem: str, example: str
) -> None:
    with pytest.raises(ImproperlyConfiguredTaskq) as caught:
        urls.parse(url, "TASKQ_BROKER_URL")
    message = str(caught.value)
    assert message.startswith("TASKQ_BROKER_URL=")
    assert problem in message
    assert f"A correct example: {example}" in message


@pytest.mark.parametrize(
    "url",
    [
        "redis://h:6379/0",
        "redis://h",
        "redis://h/",
        "rediss://:pw@h:6380/15",
        "unix:///run/r.sock?db=2",
    ],
)
def test_a_usual_single_redis_url_is_taken(url: str) -> None:
    assert urls.parse(url, "TASKQ_BROKER_URL").topology == "single"


def test_an_unknown_scheme_lists_every_form() -> None:
    with pytest.raises(ImproperlyConfiguredTaskq, match="is not a Redis URL") as caught:
        urls.parse("sentinel://h:26379/m", "TASKQ_RESULT_BACKEND")
    assert "TASKQ_RESULT_BACKEND=" in str(caught.value)
    for form in ("redis://", "redis+sentinel://", "redis+cluster://", "rediss+cluster://"):
        assert form in str(caught.value)


def test_passwords_are_hidden_in_every_form() -> None:
    assert redact("redis+sentinel://:pw@a:1,b:2/m/0?sentinel_password=sp&x=1") == (
        "redis+sentinel://:***@a:1,b:2/m/0?sentinel_password=***&x=1"
    )
    assert redact("redis+cluster://user:pw@a:1,b:2/") == "redis+cluster://user:***@a:1,b:2/"
    assert redact("redis://h:6379/0") == "redis://h:6379/0"


@pytest.mark.django_db  # Django 6.1's check also runs database checks
def test_a_malformed_topology_url_is_a_check_error_naming_the_setting() -> None:
    with override_settings(TASKQ_RESULT_BACKEND="redis+cluster://h:7000/5"):
        [error] = [m for m in check_settings() if m.id == "taskq.E001"]
    assert error.msg.startswith("TASKQ_RESULT_BACKEND=") and "only db 0" in error.msg


def _e004(**settings: object) -> list[str]:
    with override_settings(**settings):
        return [m.msg for m in check_settings() if m.id == "taskq.E004"]


def test_a_cache_alias_on_redis_cluster_is_refused() -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "c": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis+cluster://h:7000/"},
    }
    [message] = _e004(CACHES=caches, TASKQ_BROKER_URL=None, TASKQ_REDIS_CACHE_ALIAS="c")
    assert "TASKQ_REDIS_CACHE_ALIAS='c'" in message and "Redis Cluster" in message


def test_a_cache_alias_sharded_by_django_redis_is_refused() -> None:
    caches = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "s": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": ["redis://a:6379/0", "redis://b:6379/0"],
            "OPTIONS": {"CLIENT_CLASS": "django_redis.client.ShardClient"},
        },
    }
    [message] = _e004(CACHES=caches, TASKQ_BROKER_URL=None, TASKQ_REDIS_CACHE_ALIAS="s")
    assert "sharded over several Redis servers" in message


def test_a_cache_alias_that_is_not_django_redis_is_refused() -> None:
    caches = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache"}}
    [message] = _e004(CACHES=caches, TASKQ_BROKER_URL=None, TASKQ_REDIS_CACHE_ALIAS="default")
    assert "django_redis.cache.RedisCache" in message


def test_a_django_redis_sentinel_cache_alias_is_accepted() -> None:
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": "redis://mymaster/0",
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "SENTINELS": [("h", 26379)],
            },
        }
    }
    assert _e004(CACHES=caches, TASKQ_BROKER_URL=None, TASKQ_REDIS_CACHE_ALIAS="default") == []


def test_a_db_on_a_cluster_is_refused() -> None:
    [message] = _e004(
        TASKQ_BROKER_URL="redis+cluster://h:7000/", TASKQ_BROKER_CONNECTION_OPTIONS={"db": 2}
    )
    assert "TASKQ_BROKER_CONNECTION_OPTIONS sets db=2" in message


def test_a_connection_class_that_cannot_follow_sentinel_is_refused() -> None:
    from django_taskq.broker.deadline import DeadlineConnection

    [message] = _e004(
        TASKQ_BROKER_URL="redis+sentinel://h/m/0",
        TASKQ_BROKER_CONNECTION_OPTIONS={"connection_class": DeadlineConnection},
    )
    assert "connection_class=DeadlineConnection" in message and "failover" in message
