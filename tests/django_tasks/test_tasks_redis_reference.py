"""docs/migrating-from-django-tasks-redis.md against the code.

Every backend option and ``run_redis_tasks`` flag of django-tasks-redis has
a row; an option's row names the django_taskq setting that
``tasks_redis_names`` (the errors a left-behind option gets) names too, and
every ``taskq_worker`` flag the page mentions exists. The "before" and
"after" examples are read from the page itself: the "after" one must pass
the backend's checks, and tests/django_tasks/test_options.py runs a worker
configured by it. The names of django-tasks-redis were read from its 0.4
series (README, CHANGELOG and the argparse options of its commands); a
newer release's additions are added here, and to the page, when found.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import load_command_class

from django_taskq.conf import DEFAULTS
from django_taskq.tasks_redis_names import NO_REPLACEMENT, REPLACEMENTS
from tests.settings_tasks_options import DOC, example

RUN_REDIS_TASKS_FLAGS = [
    "--queue",
    "--backend",
    "--continuous",
    "--interval",
    "--max-tasks",
    "--claim-interval",
    "--shutdown-timeout",
    "--no-graceful-shutdown",
    "--empty-exit-code",
    "--failed-exit-code",
]

TEXT = DOC.read_text()


def _section(title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", TEXT, re.DOTALL | re.MULTILINE)
    assert found is not None, f"no section {title!r}"
    return found.group(1)


def _rows(title: str) -> list[list[str]]:
    rows = []
    for line in _section(title).splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows[1:]  # the header


def _setting(text: str) -> str:
    """The setting a replacement starts with ("BROKER_URL, one URL ..." -> "BROKER_URL")."""
    found = re.match(r"[A-Z_]+", text)
    assert found is not None, text
    return found.group(0)


def _options_table() -> dict[str, str]:
    table = {}
    for theirs, ours, _verdict in _rows("Backend options"):
        table[theirs.strip("`")] = ours
    return table


def test_every_option_of_theirs_has_a_row_and_the_code_knows_it() -> None:
    table = _options_table()
    assert set(table) == set(REPLACEMENTS) | set(NO_REPLACEMENT)
    for theirs, ours in table.items():
        if theirs in NO_REPLACEMENT:
            assert ours == "none", theirs
            continue
        name = ours.split("`")[1]
        assert name in DEFAULTS, (theirs, name)
        # The error a left-behind option gets names the same setting as the page.
        assert _setting(REPLACEMENTS[theirs]) == name, theirs


def test_the_before_example_uses_only_options_in_the_table() -> None:
    before = example("before")["default"]
    assert before["BACKEND"] == "django_tasks_redis.RedisTaskBackend"
    assert set(before["OPTIONS"]) <= set(_options_table())


def test_the_after_example_is_the_before_one_translated(settings: Any) -> None:
    from django_taskq.backend_options import problems

    before, after = example("before")["default"], example("after")["default"]
    assert after["BACKEND"] == "django_taskq.backends.TaskqBackend"
    assert after["QUEUES"] == before["QUEUES"]
    wanted = {_setting(REPLACEMENTS[name]) for name in before["OPTIONS"]}
    assert set(after["OPTIONS"]) == wanted
    for name in after["OPTIONS"]:  # as a project without TASKQ_* settings has it
        if hasattr(settings, "TASKQ_" + name):
            delattr(settings, "TASKQ_" + name)
    settings.TASKS = {"default": after}
    assert problems("default", after["OPTIONS"]) == []


@pytest.mark.parametrize("flag", RUN_REDIS_TASKS_FLAGS)
def test_every_run_redis_tasks_flag_has_a_row(flag: str) -> None:
    firsts = [row[0] for row in _rows("Commands")]
    assert any(cell.startswith("`run_redis_tasks") and flag in cell for cell in firsts), flag


def test_every_taskq_worker_flag_the_page_names_exists() -> None:
    parser = load_command_class("django_taskq", "taskq_worker").create_parser(
        "manage.py", "taskq_worker"
    )
    known = {s for action in parser._actions for s in action.option_strings}
    named = set(re.findall(r"taskq_worker ((?:--?[a-z][a-z-]*))", TEXT))
    assert named and named <= known, named - known
    assert "--burst" in named
