"""Benchmarks of django_taskq, run from a checkout (``python -m benchmarks.bench``).

They live beside the package, not in it: the wheel and the sdist ship none
of this (tests/packaging/dist_contents.py checks it). docs/benchmarks.md
explains each and records what they measured.
"""
