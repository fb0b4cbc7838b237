"""URLs of the example project: the admin, django_taskq's Prometheus metrics, its endpoints.

``/admin/`` shows the task history, queues, workers, dead letters and
periodic tasks; ``/taskq/metrics`` is the Prometheus scrape target
(docs/monitoring.md); ``/tasks/`` has the HTTP endpoints (run/, status/,
...), open here to staff logged in to the admin (docs/http-endpoints.md).
"""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("taskq/", include("django_taskq.urls")),
    path("tasks/", include("django_taskq.endpoints.urls")),
]
