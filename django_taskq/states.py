"""Task states, with Celery's names and meaning."""

from __future__ import annotations

PENDING = "PENDING"
RECEIVED = "RECEIVED"
STARTED = "STARTED"
RETRY = "RETRY"
SUCCESS = "SUCCESS"
FAILURE = "FAILURE"
REVOKED = "REVOKED"

#: A result in one of these states will not change any more.
READY_STATES = frozenset({SUCCESS, FAILURE, REVOKED})
#: Not finished yet.
UNREADY_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY})
#: Finished without success; get() raises.
EXCEPTION_STATES = frozenset({FAILURE, REVOKED, RETRY})
PROPAGATE_STATES = frozenset({FAILURE, REVOKED})

ALL_STATES = frozenset({PENDING, RECEIVED, STARTED, RETRY, SUCCESS, FAILURE, REVOKED})
