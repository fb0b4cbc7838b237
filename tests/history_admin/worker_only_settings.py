"""Settings of a worker that registers a task the web process (the test) does not know.

The test process runs tests.settings, without the app below, so the only
way the admin can know its task's name is from the workers.
"""

from tests.settings import *  # noqa: F403
from tests.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.history_admin.workeronly"]
TASKQ_HISTORY = False
