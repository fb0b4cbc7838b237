"""What a built wheel and sdist of django-taskq-streams must hold, read from the files alone.

    python -m tests.packaging.dist_contents dist/            (every .whl and .tar.gz there)
    python -m tests.packaging.dist_contents dist/x.whl ...   (these files)

The wheel must hold every file under ``django_taskq/`` in this checkout --
modules, Lua scripts, templates, static files, migrations, ``py.typed`` -- and
nothing else beside its ``.dist-info``; the sdist the same under
``<name>-<version>/``, plus the files a rebuild and a reader need
(pyproject.toml, README.md, CHANGELOG.md, LICENSE). Their metadata must name
this distribution, carry the version written in ``django_taskq/__init__.py``
and declare the extras the docs tell users to install. Neither may hold
the benchmark (``benchmarks/`` of the repository, with its Django app): it
is a tool of the checkout, not something a user installs.

A file that setuptools' package-data globs do not match is silently left
out of the wheel, and the app then fails only once installed (a missing Lua
script at the first task, a missing template on the admin page that needs
it): this check names it at build time. It uses only the standard library,
so it runs before anything is installed.
"""

from __future__ import annotations

import ast
import email.message
import email.parser
import sys
import tarfile
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath

DIST_NAME = "django-taskq-streams"
PACKAGE = "django_taskq"
#: Extras the README and docs tell users to install.
EXTRAS = ("hiredis", "metrics")
REQUIRES_PYTHON = ">=3.11"
LICENSE = "BSD-3-Clause"
#: Files of the checkout's root an sdist must carry.
SDIST_FILES = ("pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE")
ROOT = Path(__file__).resolve().parents[2]
#: Path prefixes of the checkout no distribution may carry (the benchmark and
#: its app, and where they lived inside the package before).
ABSENT = (
    "benchmarks/",
    f"{PACKAGE}/bench.py",
    f"{PACKAGE}/bench_scale.py",
    f"{PACKAGE}/bench_app/",
)


def source_version(root: Path = ROOT) -> str:
    """The ``__version__`` literal of ``django_taskq/__init__.py``, read without importing it."""
    tree = ast.parse((root / PACKAGE / "__init__.py").read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise LookupError(f"no __version__ = '...' literal in {root / PACKAGE / '__init__.py'}")


def package_files(root: Path = ROOT) -> set[str]:
    """Every file of the package in the checkout, as ``django_taskq/...`` (no byte code)."""
    found = set()
    for path in (root / PACKAGE).rglob("*"):
        relative = path.relative_to(root)
        if path.is_dir() or "__pycache__" in relative.parts or path.suffix in (".pyc", ".pyo"):
            continue
        found.add(relative.as_posix())
    return found


def kind(path: str) -> str:
    """What a package file is, in the words of an error message."""
    parts = PurePosixPath(path).parts
    if path.endswith(".lua"):
        return "Lua script"
    if "templates" in parts:
        return "template"
    if "static" in parts:
        return "static file"
    if "migrations" in parts:
        return "migration"
    if path.endswith("py.typed"):
        return "type marker"
    if path.endswith(".py"):
        return "module"
    return "file"


def summary(paths: set[str]) -> str:
    """``"120 modules, 14 Lua scripts, ..."`` for the files of a distribution."""
    counts = Counter(kind(p) for p in paths)
    return ", ".join(f"{n} {k}{'s' if n != 1 else ''}" for k, n in sorted(counts.items()))


def missing_and_extra(found: set[str], expected: set[str], where: str) -> list[str]:
    """One line per package file missing from a distribution, or there but not in the checkout."""
    problems = [
        f"{where}: {kind(p)} {p} is missing (is it matched by "
        "[tool.setuptools.package-data] in pyproject.toml?)"
        for p in sorted(expected - found)
    ]
    problems += [
        f"{where}: {p} is not in the checkout (a stale build/ directory?)"
        for p in sorted(found - expected)
    ]
    return problems


def benchmark_files(names: set[str], where: str) -> list[str]:
    """One line per file of the benchmark found in a distribution (it must ship none)."""
    return [
        f"{where}: {name} is part of the benchmark, which is not shipped "
        "(keep benchmarks/ out of [tool.setuptools.packages.find] and MANIFEST.in)"
        for name in sorted(names)
        if name.startswith(ABSENT)
    ]


def check_metadata(metadata: email.message.Message, version: str, where: str) -> list[str]:
    """The core metadata fields a user's ``pip install`` depends on."""
    problems = []
    wanted = {
        "Name": DIST_NAME,
        "Version": version,
        "Requires-Python": REQUIRES_PYTHON,
        "License-Expression": LICENSE,
    }
    for field, value in wanted.items():
        if metadata.get(field) != value:
            problems.append(f"{where}: {field} is {metadata.get(field)!r}, expected {value!r}")
    declared = set(metadata.get_all("Provides-Extra") or [])
    for extra in EXTRAS:
        if extra not in declared:
            problems.append(f"{where}: the extra [{extra}] is not declared (Provides-Extra)")
    return problems


def check_wheel(path: Path, root: Path = ROOT) -> list[str]:
    """Problems of a wheel, or an empty list."""
    version = source_version(root)
    stem = f"{DIST_NAME.replace('-', '_')}-{version}-py3-none-any.whl"
    problems = [] if path.name == stem else [f"{path.name}: expected the name {stem}"]
    with zipfile.ZipFile(path) as wheel:
        names = {n for n in wheel.namelist() if not n.endswith("/")}
        dist_info = f"{DIST_NAME.replace('-', '_')}-{version}.dist-info"
        content = {n for n in names if not n.startswith(f"{dist_info}/")}
        shipped = {n for n in content if not n.startswith(ABSENT)}
        problems += missing_and_extra(shipped, package_files(root), path.name)
        problems += benchmark_files(content, path.name)
        if f"{dist_info}/METADATA" not in names:
            return [*problems, f"{path.name}: no {dist_info}/METADATA"]
        metadata = email.parser.Parser().parsestr(wheel.read(f"{dist_info}/METADATA").decode())
        problems += check_metadata(metadata, version, path.name)
        if f"{dist_info}/licenses/LICENSE" not in names:
            problems.append(f"{path.name}: no {dist_info}/licenses/LICENSE")
    return problems


def check_sdist(path: Path, root: Path = ROOT) -> list[str]:
    """Problems of an sdist, or an empty list."""
    version = source_version(root)
    top = f"{DIST_NAME.replace('-', '_')}-{version}"
    if path.name != f"{top}.tar.gz":
        return [f"{path.name}: expected the name {top}.tar.gz"]
    with tarfile.open(path) as sdist:
        members = {m.name.removeprefix(f"{top}/") for m in sdist.getmembers() if m.isfile()}
        package = {m for m in members if m.startswith(f"{PACKAGE}/") and not m.startswith(ABSENT)}
        problems = missing_and_extra(package, package_files(root), path.name)
        problems += benchmark_files(members, path.name)
        absent = [name for name in SDIST_FILES if name not in members]
        problems += [f"{path.name}: {name} is missing" for name in absent]
        pkg_info = sdist.extractfile(f"{top}/PKG-INFO")
        if pkg_info is None:
            return [*problems, f"{path.name}: no PKG-INFO"]
        metadata = email.parser.Parser().parsestr(pkg_info.read().decode())
    return problems + check_metadata(metadata, version, path.name)


def distributions(arguments: list[str]) -> list[Path]:
    """The .whl and .tar.gz files named, or found in the directories named."""
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found += sorted(path.glob("*.whl")) + sorted(path.glob("*.tar.gz"))
        else:
            found.append(path)
    return found


def main(arguments: list[str]) -> int:
    files = distributions(arguments)
    kinds = {p.suffix for p in files}
    if ".whl" not in kinds or ".gz" not in kinds:
        print(f"expected a wheel and an sdist in {' '.join(arguments) or '(nothing)'}")
        return 2
    expected = package_files()
    problems: list[str] = []
    for path in files:
        found = check_wheel(path) if path.suffix == ".whl" else check_sdist(path)
        problems += found
        if not found:
            print(
                f"ok: {path.name}: every file of {PACKAGE}/ ({summary(expected)}), "
                "metadata, no benchmark"
            )
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
