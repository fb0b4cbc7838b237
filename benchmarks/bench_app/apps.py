"""App config of the benchmark app."""

from __future__ import annotations

from django.apps import AppConfig


class BenchAppConfig(AppConfig):
    """Holds the benchmark task (``tasks.add``); no models."""

    name = "benchmarks.bench_app"
    label = "taskq_bench"
    verbose_name = "django_taskq benchmark"
