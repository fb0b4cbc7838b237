"""The admin's translation catalogs (django_taskq/locale): complete, compiled, and current.

- every catalog is valid and wholly translated (``msgfmt --check``: no
  untranslated or fuzzy message, placeholders as in the English);
- the committed ``.mo`` is what its ``.po`` compiles to, so the wheel ships
  what the ``.po`` says;
- each catalog holds exactly the strings the code and templates mark
  today (``makemessages`` on a copy of the package): a new string without a
  translation fails here. ``make messages`` updates the catalogs; translate
  the new entries, then ``make messages`` again compiles them.

Needs GNU gettext (``msgfmt``, ``xgettext``), which .ci/run installs.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "django_taskq"
LOCALE = PACKAGE / "locale"
LANGUAGES = ["es", "ja", "pt_BR", "zh_Hans"]

pytestmark = pytest.mark.skipif(
    not (shutil.which("msgfmt") and shutil.which("xgettext")),
    reason="GNU gettext (msgfmt, xgettext) is not installed: apt-get install gettext",
)


def msgids(po: Path) -> set[str]:
    """The msgids (and plural msgids) of a catalog, as text."""
    found: set[str] = set()
    parts: list[str] | None = None
    for line in [*po.read_text(encoding="utf-8").splitlines(), ""]:
        if line.startswith(("msgid ", "msgid_plural ")):
            if parts is not None:
                found.add("".join(ast.literal_eval(p) for p in parts))
            parts = [line.split(" ", 1)[1]]
        elif line.startswith('"') and parts is not None:
            parts.append(line)
        elif parts is not None:
            found.add("".join(ast.literal_eval(p) for p in parts))
            parts = None
    return found - {""}


def test_the_languages_shipped_are_these() -> None:
    assert sorted(p.name for p in LOCALE.iterdir() if p.is_dir()) == LANGUAGES


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_catalog_is_complete_and_compiled(language: str, tmp_path: Path) -> None:
    po = LOCALE / language / "LC_MESSAGES" / "django.po"
    compiled = tmp_path / "django.mo"
    checked = subprocess.run(
        ["msgfmt", "--check", "--statistics", "-o", str(compiled), str(po)],
        capture_output=True,
        text=True,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin:/usr/local/bin"},
    )
    assert checked.returncode == 0, checked.stderr
    assert "untranslated" not in checked.stderr and "fuzzy" not in checked.stderr, checked.stderr
    assert "#, fuzzy" not in po.read_text(encoding="utf-8")
    shipped = po.with_suffix(".mo")
    assert shipped.read_bytes() == compiled.read_bytes(), (
        f"{shipped} is not what its .po compiles to: run make messages"
    )


def test_the_catalogs_hold_exactly_the_strings_marked_in_the_code(tmp_path: Path) -> None:
    copy = tmp_path / "django_taskq"
    # The locale folders without their catalogs: makemessages writes a new one there.
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.po", "*.mo"))
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    made = subprocess.run(
        [sys.executable, "-m", "django", "makemessages", "-l", "ja", "--no-obsolete"],
        cwd=copy,
        capture_output=True,
        text=True,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    marked = msgids(copy / "locale" / "ja" / "LC_MESSAGES" / "django.po")
    assert len(marked) > 300
    for language in LANGUAGES:
        held = msgids(LOCALE / language / "LC_MESSAGES" / "django.po")
        missing, stale = sorted(marked - held), sorted(held - marked)
        assert not missing, f"{language}: not in the catalog (make messages, translate): {missing}"
        assert not stale, f"{language}: no longer in the code (make messages): {stale}"
