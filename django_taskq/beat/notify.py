"""Wake the beat leader when schedules change through the ORM.

``post_save``/``post_delete`` of the schedule models announce the one row
that changed (with the database version it produced); the querysets'
``update()`` and ``bulk_create()`` announce "everything". Both happen after
the transaction commits, so the leader reads committed rows. Changes to the
fields beat itself writes at dispatch wake nobody.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import models, transaction
from django.db.models.signals import post_delete, post_save

from django_taskq.beat import version

#: Fields beat itself writes at dispatch; changing only these wakes nobody.
RUNTIME_FIELDS = frozenset({"last_run_at", "total_run_count"})


def _bump_on_commit(payload: str) -> None:
    transaction.on_commit(partial(version.bump, payload))


def _notify_on_commit(payload: str) -> None:
    transaction.on_commit(partial(version.notify, payload))


class ChangeNotifyingQuerySet(models.QuerySet[Any]):
    """A queryset whose bulk writes wake the beat leader like ``save()`` does."""

    def update(self, **kwargs: Any) -> int:
        count = super().update(**kwargs)
        if count and set(kwargs) - RUNTIME_FIELDS:
            _bump_on_commit(version.ALL)
        return count

    def bulk_create(self, objs: Any, *args: Any, **kwargs: Any) -> list[Any]:
        created = super().bulk_create(objs, *args, **kwargs)
        if created:
            _bump_on_commit(version.ALL)
        return created


def _payload(instance: models.Model) -> str:
    name = type(instance).__name__.lower()
    return f"{'task' if name == 'periodictask' else name}:{instance.pk}"


def _on_change(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if update_fields is not None and not set(update_fields) - RUNTIME_FIELDS:
        return
    _notify_on_commit(_payload(instance))


def _on_delete(sender: type[models.Model], instance: models.Model, **kwargs: Any) -> None:
    # post_delete still has the pk; the leader drops that one row.
    if instance.pk is None:
        _bump_on_commit(version.ALL)
    else:
        _notify_on_commit(_payload(instance))


def connect_signals(*senders: type[models.Model]) -> None:
    for model in senders:
        post_save.connect(
            _on_change, sender=model, dispatch_uid=f"taskq_beat_save_{model.__name__}"
        )
        post_delete.connect(
            _on_delete, sender=model, dispatch_uid=f"taskq_beat_delete_{model.__name__}"
        )
