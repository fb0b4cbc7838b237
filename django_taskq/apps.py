"""App config: autodiscover every installed app's ``tasks`` module, register checks."""

from __future__ import annotations

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext_lazy as _


class TaskqConfig(AppConfig):
    name = "django_taskq"
    verbose_name = _("Tasks (django_taskq)")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django_taskq import checks  # noqa: F401 - registers system checks
        from django_taskq.beat.notify import connect_signals

        # Schedule edits wake the beat leader (connected here, as
        # django-celery-beat does, not as a side effect of importing models).
        connect_signals(
            self.get_model("PeriodicTask"),
            self.get_model("IntervalSchedule"),
            self.get_model("CrontabSchedule"),
            self.get_model("ClockedSchedule"),
        )

        for internal in ("django_taskq.builtins",):
            try:
                __import__(internal)
            except ImportError:
                pass
        autodiscover_modules("tasks")
