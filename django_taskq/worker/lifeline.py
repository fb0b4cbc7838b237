"""A forked helper process that ends with the worker that forked it.

A prefork child, or the worker's history recorder, left running without its
worker would go on consuming (or recording) with nobody to supervise it.
Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG)``) ends it when its
parent dies, but only for a death *after* the call: a worker killed between
the fork and the call leaves the child an orphan for good. So the parent's
pid, taken before the fork, is compared once the signal is set, and a child
whose parent is already gone exits at once.
"""

from __future__ import annotations

import ctypes
import os

PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int, parent: int) -> None:
    """Get ``sig`` when the parent dies; exit now if ``parent`` (its pid) is gone already."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, sig)
    except OSError:  # pragma: no cover - not Linux: no parent-death signal
        return
    if parent and os.getppid() != parent:
        os._exit(1)  # the worker died before the signal was set
