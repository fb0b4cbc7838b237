"""docs/migrating-from-celery.md, "Every Celery name", against the code.

Every Celery 5.7 task option, calling option, ``AsyncResult`` attribute,
setting and worker/beat flag has a row; a **yes** or **renamed** row names
something the code accepts, and a **no** task or calling option is refused
with the row's reason. The Celery names below were read from Celery 5.7.0
(``celery.app.defaults.NAMESPACES``, ``Task``, ``AsyncResult`` and the click
options of ``celery worker`` and ``celery beat``); a newer Celery's additions
are added here, and to the tables, when the pin moves.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.management import load_command_class

from django_taskq import Task, celery_names, shared_task
from django_taskq.conf import DEFAULTS
from django_taskq.result import AsyncResult
from django_taskq.task import TASK_OPTIONS
from tests.testapp.tasks import add

DOC = Path(__file__).resolve().parents[2] / "docs" / "migrating-from-celery.md"

CELERY_TASK_OPTIONS = [
    "name",
    "bind",
    "base",
    "queue",
    "priority",
    "max_retries",
    "default_retry_delay",
    "autoretry_for",
    "dont_autoretry_for",
    "retry_kwargs",
    "retry_backoff",
    "retry_backoff_max",
    "retry_jitter",
    "throws",
    "time_limit",
    "soft_time_limit",
    "rate_limit",
    "ignore_result",
    "track_started",
    "acks_late",
    "expires",
    "serializer",
    "typing",
    "abstract",
    "acks_on_failure",
    "acks_on_timeout",
    "acks_on_failure_or_timeout",
    "reject_on_worker_lost",
    "retry_on_worker_lost",
    "resultrepr_maxsize",
    "send_events",
    "store_errors_even_if_ignored",
    "trail",
    "shadow_name",
    "backend",
    "shared",
    "lazy",
    "pydantic",
    "pydantic_strict",
    "pydantic_context",
    "pydantic_dump_kwargs",
]

CELERY_CALL_OPTIONS = [
    "args",
    "kwargs",
    "countdown",
    "eta",
    "expires",
    "shadow",
    "connection",
    "retry",
    "retry_policy",
    "time_limit",
    "soft_time_limit",
    "queue",
    "exchange",
    "routing_key",
    "priority",
    "serializer",
    "link",
    "link_error",
    "producer",
    "add_to_parent",
    "ignore_result",
    "publisher",
    "headers",
    "task_id",
    "reply_to",
    "mandatory",
    "immediate",
]

CELERY_RESULT_NAMES = [
    "TimeoutError",
    "app",
    "args",
    "as_list",
    "as_tuple",
    "backend",
    "build_graph",
    "children",
    "collect",
    "date_done",
    "exists",
    "failed",
    "forget",
    "get",
    "get_leaf",
    "graph",
    "id",
    "ignored",
    "info",
    "iterdeps",
    "kwargs",
    "maybe_reraise",
    "maybe_throw",
    "name",
    "parent",
    "queue",
    "ready",
    "result",
    "retries",
    "revoke",
    "revoke_by_stamped_headers",
    "state",
    "status",
    "successful",
    "supports_native_join",
    "task_id",
    "then",
    "throw",
    "traceback",
    "wait",
    "worker",
]

CELERY_SETTINGS = [
    "accept_content",
    "arangodb_backend_settings",
    "azureblockblob_base_path",
    "azureblockblob_connection_timeout",
    "azureblockblob_container_name",
    "azureblockblob_read_timeout",
    "azureblockblob_retry_increment_base",
    "azureblockblob_retry_initial_backoff_sec",
    "azureblockblob_retry_max_attempts",
    "beat_cron_starting_deadline",
    "beat_enable_remote_control",
    "beat_max_loop_interval",
    "beat_remote_control_max_tick_age",
    "beat_schedule",
    "beat_schedule_filename",
    "beat_scheduler",
    "beat_sync_every",
    "broker_channel_error_retry",
    "broker_connection_max_retries",
    "broker_connection_retry",
    "broker_connection_retry_on_startup",
    "broker_connection_timeout",
    "broker_failover_strategy",
    "broker_heartbeat",
    "broker_heartbeat_checkrate",
    "broker_host",
    "broker_login_method",
    "broker_native_delayed_delivery_queue_type",
    "broker_password",
    "broker_pool_acquire_timeout",
    "broker_pool_limit",
    "broker_port",
    "broker_read_url",
    "broker_transport",
    "broker_transport_options",
    "broker_url",
    "broker_use_ssl",
    "broker_user",
    "broker_vhost",
    "broker_write_url",
    "cache_backend",
    "cache_backend_options",
    "cassandra_auth_kwargs",
    "cassandra_auth_provider",
    "cassandra_bundle_path",
    "cassandra_entry_ttl",
    "cassandra_keyspace",
    "cassandra_options",
    "cassandra_port",
    "cassandra_read_consistency",
    "cassandra_servers",
    "cassandra_table",
    "cassandra_write_consistency",
    "control_exchange",
    "control_queue_durable",
    "control_queue_exclusive",
    "control_queue_expires",
    "control_queue_ttl",
    "cosmosdbsql_collection_name",
    "cosmosdbsql_consistency_level",
    "cosmosdbsql_database_name",
    "cosmosdbsql_max_retry_attempts",
    "cosmosdbsql_max_retry_wait_time",
    "couchbase_backend_settings",
    "database_create_tables_at_setup",
    "database_engine_callback",
    "database_engine_options",
    "database_short_lived_sessions",
    "database_table_names",
    "database_table_schemas",
    "database_url",
    "elasticsearch_max_retries",
    "elasticsearch_retry_on_timeout",
    "elasticsearch_save_meta_as_text",
    "elasticsearch_timeout",
    "enable_utc",
    "event_exchange",
    "event_queue_durable",
    "event_queue_exclusive",
    "event_queue_expires",
    "event_queue_prefix",
    "event_queue_ttl",
    "event_serializer",
    "gcs_base_path",
    "gcs_bucket",
    "gcs_project",
    "gcs_ttl",
    "imports",
    "include",
    "mongodb_backend_settings",
    "redis_backend_use_ssl",
    "redis_db",
    "redis_host",
    "redis_max_connections",
    "redis_password",
    "redis_port",
    "redis_retry_on_timeout",
    "redis_socket_connect_timeout",
    "redis_socket_keepalive",
    "redis_socket_timeout",
    "redis_username",
    "result_accept_content",
    "result_backend",
    "result_backend_always_retry",
    "result_backend_base_sleep_between_retries_ms",
    "result_backend_max_retries",
    "result_backend_max_sleep_between_retries_ms",
    "result_backend_transport_options",
    "result_cache_max",
    "result_chord_expires",
    "result_chord_join_timeout",
    "result_chord_retry_interval",
    "result_compression",
    "result_exchange",
    "result_exchange_type",
    "result_expires",
    "result_extended",
    "result_failure_expires",
    "result_persistent",
    "result_serializer",
    "s3_access_key_id",
    "s3_base_path",
    "s3_bucket",
    "s3_endpoint_url",
    "s3_region",
    "s3_secret_access_key",
    "security_cert_store",
    "security_certificate",
    "security_digest",
    "security_key",
    "security_key_password",
    "task_acks_late",
    "task_acks_on_failure",
    "task_acks_on_failure_or_timeout",
    "task_acks_on_timeout",
    "task_allow_error_cb_on_chord_header",
    "task_always_eager",
    "task_annotations",
    "task_compression",
    "task_create_missing_queue_exchange_type",
    "task_create_missing_queue_type",
    "task_create_missing_queues",
    "task_default_delivery_mode",
    "task_default_exchange",
    "task_default_exchange_type",
    "task_default_priority",
    "task_default_queue",
    "task_default_queue_type",
    "task_default_rate_limit",
    "task_default_routing_key",
    "task_eager_propagates",
    "task_ignore_result",
    "task_inherit_parent_priority",
    "task_protocol",
    "task_publish_retry",
    "task_publish_retry_policy",
    "task_queue_max_priority",
    "task_queues",
    "task_reject_on_worker_lost",
    "task_remote_tracebacks",
    "task_repr_maxlevels",
    "task_retry_on_worker_lost",
    "task_routes",
    "task_send_sent_event",
    "task_serializer",
    "task_soft_time_limit",
    "task_store_eager_result",
    "task_store_errors_even_if_ignored",
    "task_time_limit",
    "task_track_started",
    "timezone",
    "worker_agent",
    "worker_autoscaler",
    "worker_cancel_long_running_tasks_on_connection_loss",
    "worker_concurrency",
    "worker_consumer",
    "worker_deduplicate_successful_tasks",
    "worker_detect_quorum_queues",
    "worker_direct",
    "worker_disable_prefetch",
    "worker_disable_rate_limits",
    "worker_enable_prefetch_count_reduction",
    "worker_enable_remote_control",
    "worker_enable_soft_shutdown_on_idle",
    "worker_eta_task_limit",
    "worker_hijack_root_logger",
    "worker_log_color",
    "worker_log_datefmt",
    "worker_log_format",
    "worker_lost_wait",
    "worker_max_memory_per_child",
    "worker_max_tasks_per_child",
    "worker_pool",
    "worker_pool_putlocks",
    "worker_pool_restarts",
    "worker_pool_start_method",
    "worker_prefetch_multiplier",
    "worker_proc_alive_timeout",
    "worker_redirect_stdouts",
    "worker_redirect_stdouts_level",
    "worker_send_task_events",
    "worker_soft_shutdown_timeout",
    "worker_state_db",
    "worker_task_log_datefmt",
    "worker_task_log_format",
    "worker_timer",
    "worker_timer_precision",
]

CELERY_WORKER_FLAGS = [
    "--autoscale",
    "--beat",
    "--concurrency",
    "--detach",
    "--disable-prefetch",
    "--discard",
    "--events",
    "--exclude-queues",
    "--executable",
    "--gid",
    "--heartbeat-interval",
    "--hostname",
    "--include",
    "--logfile",
    "--loglevel",
    "--max-memory-per-child",
    "--max-tasks-per-child",
    "--optimization",
    "--pidfile",
    "--pool",
    "--pool-start-method",
    "--prefetch-multiplier",
    "--purge",
    "--queues",
    "--schedule",
    "--schedule-filename",
    "--scheduler",
    "--soft-time-limit",
    "--statedb",
    "--task-events",
    "--time-limit",
    "--uid",
    "--umask",
    "--without-gossip",
    "--without-heartbeat",
    "--without-mingle",
    "-B",
    "-D",
    "-E",
    "-I",
    "-O",
    "-P",
    "-Q",
    "-S",
    "-X",
    "-c",
    "-f",
    "-l",
    "-n",
    "-s",
]

CELERY_BEAT_FLAGS = [
    "--detach",
    "--enable-remote-control",
    "--executable",
    "--gid",
    "--hostname",
    "--logfile",
    "--loglevel",
    "--max-interval",
    "--pidfile",
    "--schedule",
    "--scheduler",
    "--uid",
    "--umask",
    "-S",
    "-f",
    "-l",
    "-n",
    "-s",
]


def _table(title: str) -> list[tuple[list[str], str, str]]:
    """The rows of the table under ``### title``: (Celery names, status, notes)."""
    section = DOC.read_text().split(f"### {title}\n", 1)[1].split("\n### ", 1)[0]
    section = section.split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        names, status, notes = (cell.strip() for cell in line.strip("|").split(" | "))
        rows.append((re.findall(r"`([^`]+)`", names), status, notes))
    assert rows, f"no table under ### {title}"
    return rows


def _plain(notes: str) -> str:
    return re.sub(r"\[([^\]]+)\]\([^)]+\)", r"\1", notes).replace("`", "")


def _covered(names: list[str], rows: list[tuple[list[str], str, str]]) -> list[str]:
    """The names no row covers (a row's name may end in ``*``)."""
    patterns = [n for row in rows for n in row[0]]
    return [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in patterns)]


def _statuses_are_known(rows: list[tuple[list[str], str, str]]) -> None:
    for names, status, notes in rows:
        assert status in ("yes", "renamed", "no"), (names, status)
        if status != "yes":
            assert notes, f"{names}: a {status} row says what to use instead"


# -- task options ---------------------------------------------------------------------
SAMPLES: dict[str, Any] = {
    "name": "tests.reference.sample",
    "bind": True,
    "queue": "reference",
    "priority": 7,
    "max_retries": 2,
    "default_retry_delay": 1,
    "autoretry_for": (ValueError,),
    "dont_autoretry_for": (KeyError,),
    "retry_kwargs": {"max_retries": 1},
    "throws": (KeyError,),
    "retry_backoff": True,
    "retry_backoff_max": 5,
    "retry_jitter": False,
    "time_limit": 5,
    "soft_time_limit": 4,
    "rate_limit": "10/s",
    "ignore_result": True,
    "track_started": True,
    "acks_late": False,
    "expires": 60,
    "serializer": "json",
    "compression": "zlib",
    "typing": False,
}


class ReferenceBase(Task):
    """A base class, as Celery users pass with base=."""


def _sample(x: int = 0) -> int:
    return x


def test_every_celery_task_option_has_a_row_and_the_code_agrees() -> None:
    rows = _table("Task options (`@app.task(...)`, `Task` attributes)")
    _statuses_are_known(rows)
    assert _covered(CELERY_TASK_OPTIONS, rows) == []
    for names, status, notes in rows:
        for option in names:
            if status == "yes":
                value = ReferenceBase if option == "base" else SAMPLES[option]
                kwargs = {option: value}
                if option != "name":
                    kwargs["name"] = f"tests.reference.{option}"
                task = shared_task(**kwargs)(_sample)
                assert option in TASK_OPTIONS or option == "base", option
                assert task.name
            else:
                assert status == "no", (option, status)
                assert celery_names.CELERY_TASK_OPTIONS[option] == _plain(notes), option
                with pytest.raises(TypeError) as refused:
                    shared_task(name=f"tests.reference.no_{option}", **{option: True})(_sample)
                assert _plain(notes) in str(refused.value), option


# -- calling options ------------------------------------------------------------------
def test_every_celery_calling_option_has_a_row_and_the_code_agrees() -> None:
    rows = _table("Calling options (`apply_async(...)`)")
    _statuses_are_known(rows)
    assert _covered(CELERY_CALL_OPTIONS, rows) == []
    import inspect

    accepted = set(inspect.signature(add.apply_async).parameters)
    for names, status, notes in rows:
        for option in names:
            if status == "yes":
                assert option in accepted, option
            elif status == "renamed":
                target = re.findall(r"`([^`]+)`", notes)[0]
                assert target in accepted, (option, target)
                with pytest.warns(DeprecationWarning):
                    envelope = add.build_envelope((1, 2), **{option: "elsewhere"})
                assert envelope.queue == "elsewhere"
            else:
                assert celery_names.CELERY_CALL_OPTIONS[option] == _plain(notes), option
                with pytest.raises(TypeError) as refused:
                    add.build_envelope((1, 2), **{option: True})
                assert _plain(notes) in str(refused.value), option


# -- AsyncResult ----------------------------------------------------------------------
def test_every_celery_async_result_name_has_a_row_and_the_code_agrees() -> None:
    rows = _table("`AsyncResult`")
    _statuses_are_known(rows)
    assert _covered(CELERY_RESULT_NAMES, rows) == []
    result = AsyncResult("a-task-id")
    for names, status, _notes in rows:
        for name in names:
            assert hasattr(result, name) == (status == "yes"), (name, status)


def test_maybe_throw_raises_a_stored_failure_and_only_that(broker: Any) -> None:
    from django_taskq.broker import keys

    broker.set(
        keys.result("failed-one"),
        '{"status": "FAILURE", "result": {"exc_type": '
        '"ValueError", "exc_message": "bad", "exc_args": ["bad"]}}',
    )
    broker.set(keys.result("fine-one"), '{"status": "SUCCESS", "result": 3}')
    with pytest.raises(ValueError, match="bad"):
        AsyncResult("failed-one").maybe_throw()
    AsyncResult("failed-one").maybe_reraise(propagate=False)
    AsyncResult("fine-one").maybe_throw()
    AsyncResult("never-sent").maybe_throw()  # not finished: nothing to raise


# -- settings -------------------------------------------------------------------------
def test_every_celery_setting_has_a_row_and_names_a_real_setting() -> None:
    rows = _table("Settings")
    _statuses_are_known(rows)
    assert _covered(CELERY_SETTINGS, rows) == []
    for names, status, notes in rows:
        if status == "yes":
            raise AssertionError(f"{names}: Celery's setting names are never read here")
        if status == "renamed":
            target = re.findall(r"`([^`]+)`", notes)[0]
            assert target.removeprefix("TASKQ_") in DEFAULTS, (names, target)
        for name in names:
            django_name = f"CELERY_{name.upper()}"
            if django_name in celery_names.SETTINGS:  # manage.py check's hint agrees
                expected = celery_names.SETTINGS[django_name]
                found = re.findall(r"`([^`]+)`", notes)[0] if status == "renamed" else None
                assert found == expected, (name, found, expected)


# -- command-line flags -------------------------------------------------------------------
def _flags(command: str) -> set[str]:
    parser = load_command_class("django_taskq", command).create_parser("manage.py", command)
    return {flag for action in parser._actions for flag in action.option_strings}


@pytest.mark.parametrize(
    ("celery", "command", "flags"),
    [("worker", "taskq_worker", CELERY_WORKER_FLAGS), ("beat", "taskq_beat", CELERY_BEAT_FLAGS)],
)
def test_every_celery_flag_has_a_row_and_the_command_agrees(
    celery: str, command: str, flags: list[str]
) -> None:
    rows = _table("`celery worker` and `celery beat` flags")
    _statuses_are_known(rows)
    ours = _flags(command)
    mine = [
        ([n.split(" ", 1)[1] for n in names if n.startswith(f"{celery} ")], status, notes)
        for names, status, notes in rows
    ]
    mine = [row for row in mine if row[0]]
    assert _covered(flags, mine) == []
    for names, status, notes in mine:
        for flag in names:
            if status == "yes":
                assert flag in ours, (command, flag)
            elif status == "renamed":
                target = re.findall(r"`([^`]+)`", notes)[0].split(" ", 1)[1]
                assert target in ours, (command, flag, target)
            else:
                assert flag not in ours, f"{command} has {flag}: its row should say yes"
