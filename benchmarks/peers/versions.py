"""Installed versions of the distributions a row depends on, for the table."""

from __future__ import annotations

from importlib import metadata


def installed(*names: str) -> dict[str, str]:
    """``{name: version}`` of each distribution named; "none" when it is not installed."""
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "none"
    return found
