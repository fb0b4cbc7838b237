"""A tiny Django app for ``python -m benchmarks.bench``: one task, its own settings.

It lives in the repository beside the benchmark, not in the package: the
worker subprocess, started from the checkout's root, imports the task
through ``DJANGO_SETTINGS_MODULE=benchmarks.bench_app.settings``.
"""
