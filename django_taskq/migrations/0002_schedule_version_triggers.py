"""Database triggers that count every change to the schedule tables.

The beat leader hears about ORM changes through signals at once; these
triggers make changes that send no signal (queryset bulk SQL elsewhere, raw
SQL, a restore) visible too: they increment the one ScheduleVersion row,
which the leader reads every TASKQ_BEAT_VERSION_POLL_SECONDS.

Updates of periodic tasks count only when a column other than last_run_at
and total_run_count changes, so beat's own writes at dispatch do not wake
it. PostgreSQL and SQLite get triggers; on other databases call
``django_taskq.beat.schedule_changed()`` after changing rows behind the ORM.

A later migration that adds a schedule-relevant column to PeriodicTask must
recreate the update trigger with that column in TASK_COLUMNS.
"""

from django.db import migrations

TASK_TABLE = "django_taskq_periodictask"
SCHEDULE_TABLES = [
    "django_taskq_intervalschedule",
    "django_taskq_crontabschedule",
    "django_taskq_clockedschedule",
]
VERSION_TABLE = "django_taskq_scheduleversion"
TASK_COLUMNS = [
    "name",
    "task",
    "interval_id",
    "crontab_id",
    "clocked_id",
    "args",
    "kwargs",
    "queue",
    "priority",
    "headers",
    "expires",
    "expire_seconds",
    "one_off",
    "start_time",
    "enabled",
    "max_staleness",
    "source",
]

BUMP_SQLITE = (
    f"INSERT OR IGNORE INTO {VERSION_TABLE} (id, version) VALUES (1, 0); "
    f"UPDATE {VERSION_TABLE} SET version = version + 1 WHERE id = 1;"
)


def _sqlite_statements():
    columns = ", ".join(TASK_COLUMNS)
    yield (
        f"CREATE TRIGGER IF NOT EXISTS django_taskq_task_update AFTER UPDATE OF {columns} "
        f"ON {TASK_TABLE} BEGIN {BUMP_SQLITE} END"
    )
    for table in [TASK_TABLE, *SCHEDULE_TABLES]:
        for event in ("INSERT", "DELETE"):
            yield (
                f"CREATE TRIGGER IF NOT EXISTS {table}_{event.lower()}_bump AFTER {event} "
                f"ON {table} BEGIN {BUMP_SQLITE} END"
            )
    for table in SCHEDULE_TABLES:
        yield (
            f"CREATE TRIGGER IF NOT EXISTS {table}_update_bump AFTER UPDATE ON {table} "
            f"BEGIN {BUMP_SQLITE} END"
        )


def _postgres_statements():
    yield f"""
        CREATE OR REPLACE FUNCTION django_taskq_bump_schedule_version() RETURNS trigger AS $$
        BEGIN
            INSERT INTO {VERSION_TABLE} (id, version) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
            UPDATE {VERSION_TABLE} SET version = version + 1 WHERE id = 1;
            RETURN NULL;
        END
        $$ LANGUAGE plpgsql
    """
    columns = ", ".join(TASK_COLUMNS)
    # Statement-level: a bulk UPDATE of 10,000 rows bumps the version once.
    yield (
        f"CREATE TRIGGER django_taskq_task_update AFTER UPDATE OF {columns} ON {TASK_TABLE} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION django_taskq_bump_schedule_version()"
    )
    for table in [TASK_TABLE, *SCHEDULE_TABLES]:
        events = (
            "INSERT OR DELETE OR TRUNCATE"
            if table == TASK_TABLE
            else ("INSERT OR UPDATE OR DELETE OR TRUNCATE")
        )
        yield (
            f"CREATE TRIGGER {table}_bump AFTER {events} ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION django_taskq_bump_schedule_version()"
        )


def _drop_statements(vendor):
    if vendor == "sqlite":
        yield "DROP TRIGGER IF EXISTS django_taskq_task_update"
        for table in [TASK_TABLE, *SCHEDULE_TABLES]:
            for event in ("insert", "delete"):
                yield f"DROP TRIGGER IF EXISTS {table}_{event}_bump"
        for table in SCHEDULE_TABLES:
            yield f"DROP TRIGGER IF EXISTS {table}_update_bump"
    elif vendor == "postgresql":
        yield f"DROP TRIGGER IF EXISTS django_taskq_task_update ON {TASK_TABLE}"
        for table in [TASK_TABLE, *SCHEDULE_TABLES]:
            yield f"DROP TRIGGER IF EXISTS {table}_bump ON {table}"
        yield "DROP FUNCTION IF EXISTS django_taskq_bump_schedule_version()"


def create_triggers(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    schema_editor.execute(f"INSERT INTO {VERSION_TABLE} (id, version) VALUES (1, 0)")
    if vendor == "sqlite":
        statements = _sqlite_statements()
    elif vendor == "postgresql":
        statements = _postgres_statements()
    else:
        return
    for sql in statements:
        schema_editor.execute(sql)


def drop_triggers(apps, schema_editor):
    for sql in _drop_statements(schema_editor.connection.vendor):
        schema_editor.execute(sql)
    schema_editor.execute(f"DELETE FROM {VERSION_TABLE}")


class Migration(migrations.Migration):
    dependencies = [("django_taskq", "0001_initial")]

    operations = [migrations.RunPython(create_triggers, drop_triggers)]
