"""Settings for beat subprocesses in tests: tests.settings plus beat knobs from the env.

TASKQ_TEST_LEASE / TASKQ_TEST_POLL shorten the lease and the version poll so
failover tests finish quickly; TASKQ_TEST_BEAT_SCHEDULE=demo adds a
settings-defined schedule.
"""

import os

from tests.settings import *  # noqa: F403

TASKQ_BEAT_LEASE_SECONDS = float(os.environ.get("TASKQ_TEST_LEASE", "10"))
TASKQ_BEAT_VERSION_POLL_SECONDS = float(os.environ.get("TASKQ_TEST_POLL", "5"))

if os.environ.get("TASKQ_TEST_BEAT_SCHEDULE") == "bad":
    TASKQ_BEAT_SCHEDULE = {
        "broken-entry": {"task": "tests.testapp.tasks.echo", "schedule": "often"}
    }
elif os.environ.get("TASKQ_TEST_BEAT_SCHEDULE") == "demo":
    TASKQ_BEAT_SCHEDULE = {
        "settings-every-2s": {"task": "tests.testapp.tasks.echo", "schedule": 2, "args": ["s"]},
    }

if os.environ.get("TASKQ_TEST_SEND_AHEAD"):
    TASKQ_BEAT_SEND_AHEAD = float(os.environ["TASKQ_TEST_SEND_AHEAD"])
