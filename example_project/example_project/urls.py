"""URLs of the example project: the admin, and django_taskq's Prometheus metrics.

``/admin/`` shows the task history, queues, workers, dead letters and
periodic tasks; ``/taskq/metrics`` is the Prometheus scrape target
(docs/monitoring.md).
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("taskq/", include("django_taskq.urls")),
]
