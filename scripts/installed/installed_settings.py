"""Settings of ``scripts/demo --wheel``: the example project's, plus a periodic task.

scripts/demo copies this file beside the example project (outside the
checkout) and runs everything with ``DJANGO_SETTINGS_MODULE=installed_settings``,
so that ``taskq_beat`` has something to send: ``demo.tasks.add(1000, 1)``
every second, which the worker's log shows as returning 1001.
"""

from datetime import timedelta

from example_project.settings import *  # noqa: F403

from django_taskq.schedules import schedule

TASKQ_BEAT_SCHEDULE = {
    "demo-add-every-second": {
        "task": "demo.tasks.add",
        "schedule": schedule(timedelta(seconds=1)),
        "args": (1000, 1),
    },
}
