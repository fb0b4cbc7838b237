"""``taskq_worker`` refuses a bad --max-tasks, --shutdown-timeout or exit code before it starts."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from django_taskq.worker.tally import Tally


@pytest.mark.parametrize("value", ["0", "-3"])
def test_max_tasks_below_1_is_refused(value: str) -> None:
    with pytest.raises(CommandError, match=rf"--max-tasks {value}: give 1 or more"):
        call_command("taskq_worker", "--max-tasks", value)


def test_shutdown_timeout_must_be_positive() -> None:
    with pytest.raises(CommandError, match="--shutdown-timeout 0: give seconds above 0"):
        call_command("taskq_worker", "--shutdown-timeout", "0")


def test_no_graceful_shutdown_and_a_shutdown_timeout_are_refused_together() -> None:
    with pytest.raises(CommandError, match="--no-graceful-shutdown with --shutdown-timeout"):
        call_command("taskq_worker", "--no-graceful-shutdown", "--shutdown-timeout", "5")


@pytest.mark.parametrize("flag", ["--failed-exit-code", "--empty-exit-code"])
def test_exit_codes_need_burst(flag: str) -> None:
    with pytest.raises(CommandError, match=rf"taskq_worker {flag} needs --burst"):
        call_command("taskq_worker", flag, "2")


def test_an_exit_code_is_0_to_255() -> None:
    with pytest.raises(CommandError, match="--empty-exit-code 256: an exit code is 0-255"):
        call_command("taskq_worker", "--burst", "--empty-exit-code", "256")


def test_the_tally_counts_and_says_when_max_tasks_is_met() -> None:
    tally = Tally(max_tasks=2)
    assert tally.count(failed=False) is False
    assert tally.count(failed=True) is True and tally.reached()
    assert (tally.ended, tally.failed) == (2, 1)
    assert Tally().count(failed=False) is False  # no limit: counts only


def test_a_lock_held_by_a_dead_child_does_not_block_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("django_taskq.worker.tally.LOCK_TIMEOUT", 0.05)
    tally = Tally(max_tasks=1)
    tally._lock.acquire()  # as a child SIGKILLed inside count() leaves it
    assert tally.count(failed=False) is True
    assert tally.ended == 1
