"""Admin entries for the live views, which read Redis and have no table.

Each is an unmanaged model with no table (``managed = False``): it exists
so the admin index lists the page under this app and Django makes its view
and change permissions, which the pages check (view to look, change to
act: purge, requeue, delete). Nothing ever queries these models.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Queue(models.Model):
    """The queues page: ready, in flight, delayed and dead messages per queue."""

    class Meta:
        app_label = "django_taskq"
        managed = False
        default_permissions = ("view", "change")
        verbose_name = _("queue")
        verbose_name_plural = _("queues")


class Worker(models.Model):
    """The workers page: live and recently seen workers and what they run."""

    class Meta:
        app_label = "django_taskq"
        managed = False
        default_permissions = ("view", "change")
        verbose_name = _("worker")
        verbose_name_plural = _("workers")


class DeadLetter(models.Model):
    """The dead letters page: messages that could not run, with their reasons."""

    class Meta:
        app_label = "django_taskq"
        managed = False
        default_permissions = ("view", "change")
        verbose_name = _("dead letter")
        verbose_name_plural = _("dead letters")


class Dashboard(models.Model):
    """The dashboard: throughput and failures per minute, slowest and most-failing tasks."""

    class Meta:
        app_label = "django_taskq"
        managed = False
        default_permissions = ("view",)
        verbose_name = _("dashboard")
        verbose_name_plural = _("dashboard")
