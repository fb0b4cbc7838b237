"""One version, one distribution name, everywhere they are written.

``django_taskq.__version__`` is the single source: pyproject.toml reads it
(setuptools' dynamic version), the installed metadata carries it, and
CHANGELOG.md's newest heading names it. Every install line in the README,
the docs and the package's own messages names the distribution
``django-taskq-streams``, not ``django-taskq`` (an unrelated project's
name on PyPI).
"""

from __future__ import annotations

import importlib.metadata
import re
import tomllib

import django_taskq
from tests.packaging.dist_contents import DIST_NAME, EXTRAS, ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# MAJOR.MINOR.PATCH, optionally a PEP 440 pre-release or dev suffix (0.3.0rc1, 0.3.0.dev0).
SEMVER = re.compile(r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)((a|b|rc)\d+|\.dev\d+)?")


def test_the_version_is_semantic() -> None:
    assert SEMVER.fullmatch(django_taskq.__version__), django_taskq.__version__


def test_pyproject_reads_the_version_from_the_package() -> None:
    project = PYPROJECT["project"]
    assert project["name"] == DIST_NAME
    assert "version" not in project
    assert project["dynamic"] == ["version"]
    dynamic = PYPROJECT["tool"]["setuptools"]["dynamic"]["version"]
    assert dynamic == {"attr": "django_taskq.__version__"}


def test_the_installed_metadata_has_the_package_version() -> None:
    installed = importlib.metadata.version(DIST_NAME)
    assert installed == django_taskq.__version__, (
        f"the installed {DIST_NAME} is {installed}, the checkout {django_taskq.__version__}: "
        "reinstall it (scripts/test does when the version changes; pip install -e .)"
    )


def test_the_changelog_names_the_version_first() -> None:
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings, "CHANGELOG.md has no '## <version> ...' heading"
    assert headings[0] == django_taskq.__version__
    assert len(headings) == len(set(headings)), f"a version is listed twice: {headings}"


def test_the_extras_the_docs_name_exist() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert set(EXTRAS) <= set(extras)
    assert f"{DIST_NAME}[test]" in extras["dev"]


def documents() -> list[str]:
    paths = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
    paths += sorted((ROOT / "django_taskq").rglob("*.py"))
    return [str(p.relative_to(ROOT)) for p in paths]


def wrong_installs(text: str) -> list[str]:
    """The ``pip install`` lines of ``text`` that name ``django-taskq`` (any spelling)."""
    wrong = []
    for line in re.finditer(r"pip install ([^\n`#]*)", text):
        for token in line.group(1).split():
            name = re.split(r"[\[<>=!~;@ ]", token.strip("'\""))[0]
            if re.sub(r"[-_.]+", "-", name.lower()) == "django-taskq":
                wrong.append(line.group(0).strip())
    return wrong


def test_every_install_line_installs_this_distribution() -> None:
    wrong = {
        path: found for path in documents() if (found := wrong_installs((ROOT / path).read_text()))
    }
    assert not wrong, f"these install another distribution; write {DIST_NAME}: {wrong}"


def test_the_install_line_check_catches_the_old_name() -> None:
    assert wrong_installs("pip install django-taskq[hiredis]")
    assert wrong_installs("`pip install 'django-taskq[metrics]'`")
    assert wrong_installs("pip install -U Django_TaskQ==0.1.0")
    assert not wrong_installs("pip install 'django-taskq-streams[metrics]'")
    assert not wrong_installs("pip install django-taskq-streams   # imported as django_taskq")
    assert not wrong_installs("pip install -e path/to/django_taskq/checkout")
