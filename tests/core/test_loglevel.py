"""``-l/--loglevel`` in any case, the same in every command that takes it.

The bug: ``manage.py taskq_beat -l info`` was refused (``invalid choice:
'info'``) while ``taskq_worker -l info`` worked, and Celery's docs write
``-l info``.
"""

from __future__ import annotations

import argparse

import pytest
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

from django_taskq.management.loglevel import LEVELS, log_level


def taskq_commands_with_loglevel() -> list[str]:
    """Every django_taskq management command that has a ``--loglevel`` option."""
    names = []
    for name, app in sorted(get_commands().items()):
        if app != "django_taskq":
            continue
        parser = load_command_class(app, name).create_parser("manage.py", name)
        if any("--loglevel" in action.option_strings for action in parser._actions):
            names.append(name)
    return names


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("info", "INFO"),
        ("INFO", "INFO"),
        ("Debug", "DEBUG"),
        (" warning ", "WARNING"),
        ("warn", "WARNING"),
        ("error", "ERROR"),
        ("critical", "CRITICAL"),
        ("fatal", "CRITICAL"),
    ],
)
def test_log_level_accepts_any_case(given: str, expected: str) -> None:
    assert log_level(given) == expected


@pytest.mark.parametrize("given", ["verbose", "", "10", "notset"])
def test_log_level_refuses_what_is_not_a_level_and_names_the_choices(given: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError) as caught:
        log_level(given)
    assert str(caught.value) == (
        f"{given!r} is not a log level: use one of {', '.join(LEVELS)} (in any case)"
    )


def test_the_long_running_commands_take_a_loglevel() -> None:
    # A new command with -l/--loglevel is checked by the tests below too.
    assert {"taskq_worker", "taskq_beat"} <= set(taskq_commands_with_loglevel())


@pytest.mark.parametrize("command", taskq_commands_with_loglevel())
@pytest.mark.parametrize("flag", ["-l", "--loglevel"])
@pytest.mark.parametrize("given", ["info", "INFO", "debug", "Warning"])
def test_every_command_parses_a_level_in_any_case(command: str, flag: str, given: str) -> None:
    parser = load_command_class("django_taskq", command).create_parser("manage.py", command)
    assert parser.parse_args([flag, given]).loglevel == given.upper()
    assert parser.parse_args([]).loglevel == "INFO"


@pytest.mark.parametrize("command", taskq_commands_with_loglevel())
def test_every_command_refuses_a_wrong_level_with_the_same_message(command: str) -> None:
    parser = load_command_class("django_taskq", command).create_parser("manage.py", command)
    with pytest.raises(CommandError) as caught:
        parser.parse_args(["-l", "loud"])
    assert str(caught.value) == (
        "Error: argument -l/--loglevel: 'loud' is not a log level: "
        "use one of DEBUG, INFO, WARNING, ERROR, CRITICAL (in any case)"
    )
