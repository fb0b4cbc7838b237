"""A prefork child's slot (shared memory the parent reads) holds any task id without breaking.

The parent reads the slot in its supervision loop (time limits,
terminations, a child's exit) and in every heartbeat (the worker's
description). An entry's raw id of arbitrary bytes (the slot holds it
while the entry is checked) once made that read raise (a UTF-8 character
cut at the slot's size), and the heartbeat thread died of it. The slot is
also fed more than its size directly, as no valid message can feed it.
"""

from __future__ import annotations

import threading
import time

import pytest

from django_taskq.broker import keys
from django_taskq.messages import Envelope
from django_taskq.worker import streams as ops
from django_taskq.worker.consumer import Running
from django_taskq.worker.heartbeat import Heartbeat
from django_taskq.worker.prefork import SLOT_BYTES, Slot

STREAM = "taskq:{default}:5"


@pytest.mark.parametrize(
    "raw",
    [b"\xff" * 400, "\u00e9".encode() * 600, b"a\nb\nc" * 10, "\U0001f600".encode() * 255],
    ids=["not-utf8", "cut-mid-character", "newlines", "emoji"],
)
def test_an_entry_being_checked_reads_back_whatever_its_id_held(raw: bytes) -> None:
    slot = Slot()
    slot.update(Running(ops.Delivery(STREAM, "1-0", {b"i": raw}), None, time.monotonic()), None)
    found = slot.read()
    assert found is not None
    desc = found[2]
    assert desc[:2] == [STREAM, "1-0"] and len(desc) == 4
    assert slot.running() is None  # being checked: no task yet


def test_a_running_task_with_the_longest_id_is_read_back() -> None:
    # 1,020 bytes (a worker refuses such an id in a message; here the slot is
    # fed it directly): the slot cuts inside the last characters.
    task_id = "\U0001f600" * 255
    assert len(f"{STREAM}\n1-0\n{task_id}\nmy.task".encode()) > SLOT_BYTES
    slot = Slot()
    delivery = ops.Delivery(STREAM, "1-0", {b"i": task_id.encode()})
    slot.update(Running(delivery, Envelope(id=task_id, task="my.task"), time.monotonic()), 30.0)
    running = slot.running()
    assert running is not None
    assert (running.stream, running.entry_id) == (STREAM, "1-0")
    assert task_id.startswith(running.task_id.rstrip("\ufffd"))


def test_beats_go_on_when_the_description_fails(broker: object) -> None:
    def boom() -> dict[str, object]:
        raise UnicodeDecodeError("utf-8", b"\xf0", 0, 1, "unexpected end of data")

    Heartbeat(threading.Event(), lambda: ["consumer-1"], "taskq@slot-test", boom).beat_now()
    assert broker.get(keys.heartbeat("consumer-1")) is not None  # type: ignore[attr-defined]
    assert broker.get(keys.worker_info("taskq@slot-test")) is None  # type: ignore[attr-defined]


def test_the_heartbeat_thread_outlives_a_beat_that_raises(broker: object) -> None:
    calls = []

    def names() -> list[str]:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected: the first beat fails")
        return ["consumer-2"]

    stop = threading.Event()
    beats = Heartbeat(stop, names, "taskq@slot-test", dict)
    beats.start()
    try:
        deadline = time.monotonic() + 10
        while broker.get(keys.heartbeat("consumer-2")) is None:  # type: ignore[attr-defined]
            assert time.monotonic() < deadline, "no beat after the failed one"
            assert beats.is_alive()
            time.sleep(0.02)
    finally:
        stop.set()
        beats.join(5)
