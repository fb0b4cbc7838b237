"""Fault-injection tests: crashes, restarts, dropped connections and bad input, end to end.

Real redis-server processes, real ``manage.py taskq_worker`` / ``taskq_beat``
subprocesses, and exact counts of what ran (tests/faults/recorder.py). Run
them with ``make faults`` (full scale) or ``scripts/test tests/faults`` (small
scale, as in CI); TASKQ_FAULTS_SCALE picks the scale (tests/faults/scale.py).
test_topology_failover.py kills a Sentinel master and a Cluster master and
reshards a Cluster under load, on private set-ups of those topologies.

This package is also a Django app (in tests/settings.py INSTALLED_APPS) so
that workers load its tasks (tests/faults/tasks.py). It imports nothing at
package level, so ``python -m tests.faults.report`` runs without Django.
"""
