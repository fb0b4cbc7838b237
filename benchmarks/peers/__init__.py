"""django_taskq side by side with Celery, Huey, Dramatiq and RQ (``make bench-peers``).

``run`` drives the rounds and writes the table into docs/benchmarks.md;
``measure`` measures one row in the interpreter that has the system;
``peer_<system>`` are the adapters: each defines the same task, ``add(x,
y)`` returning ``x + y``, for its system, and a driver that enqueues it,
reads its results and names the worker command, for the system's defaults
and for its documented tuning. The peers come from requirements.txt,
installed into a virtualenv of their own (scripts/bench-peers).
"""
