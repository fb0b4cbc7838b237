"""Register the live pages (queues, dead letters, workers, dashboard) with the admin.

Each page is the changelist of an unmanaged model with no table; the
pages themselves are in ``monitor/pages/``, one module each.
"""

from __future__ import annotations

from django.contrib import admin

from django_taskq.monitor.models import Dashboard, DeadLetter, Queue, Worker
from django_taskq.monitor.pages.dashboard import DashboardAdmin
from django_taskq.monitor.pages.dead_letters import DeadLetterAdmin
from django_taskq.monitor.pages.queues import QueueAdmin
from django_taskq.monitor.pages.workers import WorkerAdmin

admin.site.register(Queue, QueueAdmin)
admin.site.register(DeadLetter, DeadLetterAdmin)
admin.site.register(Worker, WorkerAdmin)
admin.site.register(Dashboard, DashboardAdmin)
