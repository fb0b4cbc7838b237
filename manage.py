#!/usr/bin/env python
"""Django's command-line utility for the example project (example_project/)."""

import os
import sys
from pathlib import Path

if __name__ == "__main__":
    # The example project lives in example_project/ (its settings package and
    # the demo app); the repository root stays first so tests.settings works too.
    sys.path.insert(1, str(Path(__file__).resolve().parent / "example_project"))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "example_project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
