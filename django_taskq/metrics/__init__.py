"""Metrics: counters kept in Redis by the processes that do the work, exposed for Prometheus.

``counters`` is what producers and workers write (no dependency); the
Prometheus side (``prometheus_client``, the ``[metrics]`` extra) reads them.
"""
