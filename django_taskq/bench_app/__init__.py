"""A tiny Django app for ``python -m django_taskq.bench``: one task, its own settings.

It ships with django_taskq so the benchmark runs from any clean install,
without a project: the worker subprocess imports the task through
``DJANGO_SETTINGS_MODULE=django_taskq.bench_app.settings``.
"""
