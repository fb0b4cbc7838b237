"""Self-test of the fuzzer (tests/faults/fuzz.py), without a worker.

Checks that every kind really is malformed (and only the expired one is
merely expired), that what ``delay()`` writes is *not* flagged, that the
entries survive XADD byte for byte, that the deep and pickled bodies are
what they claim, and that dead letters are paired back with their entries.

It also records, as figures, what today's ``Envelope.decode`` makes of each
kind: accepted (a worker would run it), rejected with DecodeError (dead
letter), or crashed with another exception (a worker that does not catch it
dies). That is a map of the decoder's gaps, for the engineer fixing it.
"""

from __future__ import annotations

import base64
import json
import pickle
from pathlib import Path
from typing import Any

import pytest

from django_taskq import chord
from django_taskq.exceptions import DecodeError
from django_taskq.messages import PICKLE_MARK, Envelope
from django_taskq.registry import registry
from tests.faults import fuzz
from tests.faults.helpers import queue_streams
from tests.faults.recorder import Recorder
from tests.faults.tasks import fault_fast, fault_slow

pytestmark = pytest.mark.faults


def one_of_each() -> list[fuzz.BadEntry]:
    return fuzz.generate(len(fuzz.KINDS) * 3, seed=7, huge_cap=1)


def test_every_kind_is_malformed_and_only_expires_past_is_merely_expired(
    figures: dict[str, Any],
) -> None:
    entries = one_of_each()
    assert {e.kind for e in entries} == set(fuzz.KINDS)
    for entry in entries:
        problem = fuzz.strict_problem(entry.fields)
        assert problem is not None, entry.kind
        assert (problem == "expired") == (entry.expect == fuzz.REVOKED), (entry.kind, problem)
    # What today's decoder does with each kind (a map for the worker's engineer).
    accepted, crashed = set(), {}
    for entry in entries:
        try:
            Envelope.decode(entry.fields.get(b"b", b""), ["json"])
        except DecodeError:
            continue
        except BaseException as exc:
            crashed[entry.kind] = type(exc).__name__
            continue
        accepted.add(entry.kind)
    figures["kinds"] = len(fuzz.KINDS)
    figures["decode_accepts"] = sorted(accepted)
    figures["decode_crashes"] = dict(sorted(crashed.items()))


def test_generate_covers_every_kind_several_times() -> None:
    entries = fuzz.generate(600, huge_cap=3)
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.kind] = counts.get(entry.kind, 0) + 1
    assert len(entries) == 600
    assert set(counts) == set(fuzz.KINDS)
    assert counts.pop(fuzz.HUGE_KIND) == 3
    assert min(counts.values()) >= 5
    assert len({e.token for e in entries}) == 600  # every entry findable on its own
    again = fuzz.generate(600, huge_cap=3)  # reproducible (but for timestamps)
    assert [(e.kind, e.token) for e in again] == [(e.kind, e.token) for e in entries]


def test_what_delay_writes_is_well_formed(broker: Any) -> None:
    import datetime as dt
    import uuid
    from decimal import Decimal

    fault_fast.delay(1)
    fault_fast.apply_async(
        args=[2],
        priority=9,
        expires=3600,
        headers={"h": 1},
        time_limit=5,
        soft_time_limit=4,
        link=fault_fast.s(),
        link_error=fault_slow.si(0),
    )
    fault_slow.delay(0, n=3)
    fault_fast.delay(
        [dt.datetime.now(dt.UTC), dt.date.today(), Decimal("1.5"), uuid.uuid4(), b"\x00", {1, 2}]
    )
    chord([fault_fast.s(4), fault_fast.s(5)], fault_fast.s()).apply_async()
    entries = [f for s in queue_streams() for _, f in broker.xrange(s)]
    assert len(entries) == 6
    for fields in entries:
        assert fuzz.strict_problem(fields, registry.names()) is None, fields


def test_entries_survive_xadd_byte_for_byte(broker: Any) -> None:
    entries = one_of_each()
    for entry in entries:
        broker.xadd("fuzz-scratch", entry.fields)
    back = [fields for _, fields in broker.xrange("fuzz-scratch")]
    assert back == [entry.fields for entry in entries]
    huge = next(e for e in entries if e.kind == fuzz.HUGE_KIND)
    assert len(huge.fields[b"b"]) == fuzz.HUGE_BYTES


def test_deep_body_exhausts_the_recursion_limit() -> None:
    entry = next(e for e in one_of_each() if e.kind == "body_deep_nesting")
    with pytest.raises(RecursionError):
        json.loads(entry.fields[b"b"])


def test_pickled_body_trips_the_recorder_if_ever_unpickled(
    faults_dir: Path, recorder: Recorder
) -> None:
    entry = next(e for e in one_of_each() if e.kind == "body_pickled")
    body = entry.fields[b"b"]
    assert body.startswith(PICKLE_MARK.encode())
    assert recorder.read().ran([entry.token]) == set()
    pickle.loads(base64.b64decode(body[len(PICKLE_MARK) :]))  # what a careless worker would do
    assert recorder.read().ran([entry.token]) == {entry.token}


def test_dead_letters_are_matched_to_their_entries() -> None:
    entries = [e for e in one_of_each() if e.kind in {"missing_i", "i_not_utf8", "i_mismatch"}]
    rows = [
        {
            "i": e.fields.get(b"i", b"").decode(errors="replace"),
            "b": e.fields.get(b"b", b"").decode(errors="replace"),
            "reason": "bad",
        }
        for e in entries
    ]
    rows.append({"i": "someone-else", "b": "", "reason": "x"})
    matched, unmatched = fuzz.match_dead_letters(entries, rows)
    assert all(len(found) == 1 for found in matched.values())
    assert unmatched == [rows[-1]]
