"""Django signals sent around task execution and worker life.

Receivers get keyword arguments; a receiver that raises is logged and does
not affect the task or the worker (signals are sent with ``send_robust``).

- ``task_prerun(sender=task, task_id, task, args, kwargs)``
- ``task_postrun(sender=task, task_id, task, args, kwargs, retval, state)``
- ``task_success(sender=task, result)``
- ``task_failure(sender=task, task_id, exception, args, kwargs, traceback, einfo)``
- ``task_retry(sender=task, request, reason, einfo)``
- ``task_revoked(sender=task, request, terminated, signum, expired, reason)``
- ``worker_ready(sender=worker)``, ``worker_shutdown(sender=worker)``
"""

from __future__ import annotations

import logging
from typing import Any

from django.dispatch import Signal

logger = logging.getLogger("django_taskq.signals")

task_prerun = Signal()
task_postrun = Signal()
task_success = Signal()
task_failure = Signal()
task_retry = Signal()
task_revoked = Signal()
worker_ready = Signal()
worker_shutdown = Signal()


def send(signal: Signal, sender: Any, **kwargs: Any) -> None:
    """Send ``signal`` if anyone listens; log receivers that raise."""
    if not signal.receivers:
        return
    for receiver, response in signal.send_robust(sender, **kwargs):
        if isinstance(response, Exception):
            logger.error("signal receiver %r raised %r", receiver, response, exc_info=response)
