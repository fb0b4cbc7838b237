"""URLs of the HTTP endpoints: ``path("tasks/", include("django_taskq.endpoints.urls"))``.

The paths are django-tasks-redis's, so a scheduler job pointed at them keeps
working after a switch. Every one is closed (403) until TASKQ_AUTH_HANDLERS
says who may call it (docs/http-endpoints.md).
"""

from __future__ import annotations

from django.urls import path

from django_taskq.endpoints import views

app_name = "django_taskq_endpoints"

urlpatterns = [
    path("run/", views.run, name="run"),
    path("run-one/", views.run_one, name="run-one"),
    path("execute/<str:task_id>/", views.execute, name="execute"),
    path("status/", views.queue_status, name="queue-status"),
    path("status/<str:task_id>/", views.task_status, name="task-status"),
    path("purge/", views.purge, name="purge"),
]
