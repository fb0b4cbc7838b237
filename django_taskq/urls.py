"""URLs of django_taskq: ``path("taskq/", include("django_taskq.urls"))`` in your URLconf.

- ``metrics/`` (name ``taskq-metrics``): Prometheus metrics, protected by
  TASKQ_METRICS_TOKEN when it is set (docs/monitoring.md).
"""

from __future__ import annotations

from django.urls import path

from django_taskq.metrics.views import metrics

urlpatterns = [
    path("metrics", metrics, name="taskq-metrics"),
]
