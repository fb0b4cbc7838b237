"""Settings of the workers the history admin tests start: the test settings, no recorder.

Those tests make their history rows with the ORM and check what the admin
does with them; a recorder in the worker would write rows of its own for
the same tasks (and commit them outside the test's transaction). The
tests that check the admin against the recorder (test_with_recorder.py)
start workers with the plain test settings.
"""

from tests.settings import *  # noqa: F403

TASKQ_HISTORY = False
