"""The ``-l/--loglevel`` option shared by the long-running commands, in any case.

Celery users (and the Celery docs this project replaces) write ``-l info``;
argparse ``choices`` compare exactly, so ``taskq_beat -l info`` was refused
while ``taskq_worker -l info`` worked. Every command that takes a log level
adds it with :func:`add_loglevel_argument`, so they all accept the same
spellings and answer a wrong one with the same message.
"""

from __future__ import annotations

import argparse

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Spellings the logging module also knows, mapped to the names above.
ALIASES = {"WARN": "WARNING", "FATAL": "CRITICAL"}


def log_level(value: str) -> str:
    """Return the level name that ``value`` spells in any case: ``info`` -> ``INFO``.

    Used as an argparse ``type``; an unknown name raises ArgumentTypeError,
    which argparse reports as ``argument -l/--loglevel: <message>``.
    """
    name = value.strip().upper()
    name = ALIASES.get(name, name)
    if name not in LEVELS:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a log level: use one of {', '.join(LEVELS)} (in any case)"
        )
    return name


def add_loglevel_argument(parser: argparse.ArgumentParser, help: str) -> None:
    """Add ``-l/--loglevel LEVEL`` (default INFO, any case) to a command's parser."""
    parser.add_argument(
        "-l",
        "--loglevel",
        type=log_level,
        default="INFO",
        metavar="LEVEL",
        help=f"{help} One of {', '.join(LEVELS)}, in any case (default INFO).",
    )
