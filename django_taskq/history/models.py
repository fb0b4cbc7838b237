"""``TaskRecord``: one row per task, the durable history the admin lists and acts on.

Rows are written only by the recorder (``django_taskq.history.recorder``),
which folds the task events workers and producers append to Redis into
idempotent bulk upserts keyed by ``task_id``. Nothing else writes them, so
a row is a view of what the events said, and replaying events converges on
the same row. The indexes follow the admin's filters: state, task name,
queue, worker and priority, each with the send time, which is the date hierarchy and
the default ordering; retention prunes by send time too.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.utils.translation import gettext_lazy as _


class TaskRecordQuerySet(models.QuerySet[Any]):
    """Verbs for the admin and for retention."""

    FAILED_STATES = ("FAILURE", "REVOKED")

    def failed(self) -> TaskRecordQuerySet:
        """Rows that ended badly: failed, revoked, expired or dead-lettered."""
        return self.filter(models.Q(state__in=self.FAILED_STATES) | models.Q(dead_lettered=True))

    def running(self) -> TaskRecordQuerySet:
        return self.filter(state="STARTED")

    def of_periodic_task(self, name: str) -> TaskRecordQuerySet:
        return self.filter(periodic_task_name=name)


class TaskRecord(models.Model):
    """What happened to one task: its call, its state and timings, its outcome."""

    task_id = models.CharField(
        _("task id"),
        max_length=255,
        unique=True,
        help_text=_("The task's id, as AsyncResult(task_id) knows it."),
    )
    task_name = models.CharField(
        _("task name"),
        max_length=255,
        db_index=True,
        help_text=_("Registered name of the task."),
    )
    state = models.CharField(
        _("state"),
        max_length=50,
        db_index=True,
        default="PENDING",
        help_text=_(
            "PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE or REVOKED, or a custom "
            "state the task set with update_state()."
        ),
    )
    dead_lettered = models.BooleanField(
        _("dead-lettered"),
        default=False,
        help_text=_("The message was moved to its queue's dead letters instead of running."),
    )
    reason = models.TextField(
        _("reason"),
        blank=True,
        default="",
        help_text=_("Why the task was retried, revoked, expired or dead-lettered."),
    )
    args = models.TextField(
        _("positional arguments"),
        blank=True,
        default="",
        help_text=_("repr() of the arguments, cut at TASKQ_HISTORY_REPR_LIMIT characters."),
    )
    kwargs = models.TextField(
        _("keyword arguments"),
        blank=True,
        default="",
        help_text=_("repr() of the keyword arguments, cut at TASKQ_HISTORY_REPR_LIMIT."),
    )
    result = models.TextField(
        _("result"),
        blank=True,
        default="",
        help_text=_("repr() of the return value, cut at TASKQ_HISTORY_REPR_LIMIT characters."),
    )
    exception_type = models.CharField(
        _("exception type"),
        max_length=255,
        blank=True,
        default="",
        help_text=_("Class of the exception the task failed or retried with."),
    )
    exception_message = models.TextField(
        _("exception message"),
        blank=True,
        default="",
        help_text=_("str() of that exception."),
    )
    traceback = models.TextField(
        _("traceback"),
        blank=True,
        default="",
        help_text=_("The traceback of the failure."),
    )
    progress = models.JSONField(
        _("progress"),
        null=True,
        blank=True,
        help_text=_("The latest meta the task reported with update_state(), while it runs."),
    )
    queue = models.CharField(
        _("queue"),
        max_length=200,
        db_index=True,
        default="",
        blank=True,
        help_text=_("Queue the task was sent to."),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"),
        null=True,
        blank=True,
        help_text=_("0-9; 9 runs first."),
    )
    worker = models.CharField(
        _("worker"),
        max_length=255,
        db_index=True,
        blank=True,
        default="",
        help_text=_("Worker (hostname) that ran the task last."),
    )
    retries = models.PositiveIntegerField(
        _("retries"),
        default=0,
        help_text=_("How many times the task has been retried."),
    )
    delivery_count = models.PositiveIntegerField(
        _("delivery count"),
        default=0,
        help_text=_("Deliveries of the message that did not finish (worker crashes)."),
    )
    sent_at = models.DateTimeField(
        _("sent"),
        null=True,
        blank=True,
        help_text=_("When the task was sent."),
    )
    eta = models.DateTimeField(
        _("ETA"),
        null=True,
        blank=True,
        help_text=_("Earliest time to run (countdown, eta or a retry's delay)."),
    )
    expires = models.DateTimeField(
        _("expires"),
        null=True,
        blank=True,
        help_text=_("A task not started by then is revoked as expired."),
    )
    received_at = models.DateTimeField(
        _("received"),
        null=True,
        blank=True,
        help_text=_("When a worker fetched the task."),
    )
    started_at = models.DateTimeField(
        _("started"),
        null=True,
        blank=True,
        help_text=_("When the task body started running."),
    )
    finished_at = models.DateTimeField(
        _("finished"),
        null=True,
        blank=True,
        help_text=_("When the task reached its final state."),
    )
    runtime = models.FloatField(
        _("runtime (s)"),
        null=True,
        blank=True,
        help_text=_("Seconds the task body ran."),
    )
    wait_time = models.FloatField(
        _("wait (s)"),
        null=True,
        blank=True,
        help_text=_("Seconds from when it was due (sent or its ETA) to when it started."),
    )
    parent_id = models.CharField(
        _("parent id"),
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text=_("The task that sent this one, if any."),
    )
    root_id = models.CharField(
        _("root id"),
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text=_("The first task of the workflow this one belongs to."),
    )
    group_id = models.CharField(
        _("group id"),
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text=_("The group or chord this task is a member of."),
    )
    periodic_task_name = models.CharField(
        _("periodic task"),
        max_length=200,
        blank=True,
        default="",
        db_index=True,
        help_text=_("Name of the periodic task that sent this run, if beat sent it."),
    )
    retry_of = models.CharField(
        _("retry of"),
        max_length=255,
        blank=True,
        default="",
        db_index=True,
        help_text=_("The task this one runs again (the admin's retry action)."),
    )
    body = models.TextField(
        _("message"),
        blank=True,
        default="",
        help_text=_(
            "The task's message as sent, kept so the admin can show it and send it again "
            "(JSON as it is; msgpack or compressed as 'base64:' and the bytes in base64); "
            "empty when it was larger than TASKQ_HISTORY_BODY_LIMIT or pickled."
        ),
    )
    updated_at = models.DateTimeField(
        _("updated"),
        auto_now=True,
        help_text=_("When the recorder last wrote this row."),
    )

    objects = TaskRecordQuerySet.as_manager()

    class Meta:
        app_label = "django_taskq"
        verbose_name = _("task")
        verbose_name_plural = _("tasks")
        ordering = ["-sent_at", "-id"]
        indexes = [
            models.Index(fields=["-sent_at"], name="taskq_record_sent"),
            models.Index(fields=["state", "-sent_at"], name="taskq_record_state_sent"),
            models.Index(fields=["task_name", "-sent_at"], name="taskq_record_name_sent"),
            models.Index(fields=["queue", "-sent_at"], name="taskq_record_queue_sent"),
            models.Index(fields=["worker", "-sent_at"], name="taskq_record_worker_sent"),
            models.Index(fields=["priority", "-sent_at"], name="taskq_record_priority_sent"),
            models.Index(
                fields=["periodic_task_name", "-sent_at"], name="taskq_record_periodic_sent"
            ),
            # The "failed" filter is state IN (FAILURE, REVOKED) OR dead_lettered:
            # the state index serves one side, this small one the other.
            models.Index(
                fields=["-sent_at"],
                name="taskq_record_dead_sent",
                condition=models.Q(dead_lettered=True),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.task_name}[{self.task_id}] {self.state}"
