"""What the foreground services (``taskq_beat``, ``taskq_recorder``) share: logging and stopping.

Both run one loop until SIGTERM or Ctrl-C, and log through ``django_taskq``
loggers that the project's LOGGING may leave without a handler.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from types import FrameType


def configure_logging(level: str) -> None:
    """Give django_taskq a console handler unless the project's LOGGING did."""
    logger = logging.getLogger("django_taskq")
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("[%(asctime)s %(levelname)s %(name)s] %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)


def configure_worker_logging(level: str | int) -> None:
    """The worker's logging: ``level`` on django_taskq, stderr with the process name unless set up.

    Used by ``taskq_worker`` and by the history recorder process it starts,
    so both write the same lines to the same place.
    """
    logger = logging.getLogger("django_taskq")
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(
            logging.Formatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s")
        )
        logger.addHandler(handler)


def stop_on_signals(logger_name: str, what: str) -> threading.Event:
    """An event set by SIGTERM or SIGINT, each logged as "<what>: got SIGTERM, stopping"."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        logging.getLogger(logger_name).info(
            "%s: got %s, stopping", what, signal.Signals(signum).name
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    return stop
