"""A project's own subclass of TaskqBackend (its OPTIONS are read as TaskqBackend's)."""

from django_taskq.backends import TaskqBackend


class ProjectBackend(TaskqBackend):
    """What a project writes to add something of its own to the backend."""
