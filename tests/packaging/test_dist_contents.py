"""tests/packaging/dist_contents.py names what a wheel or sdist leaves out.

The real wheel and sdist are built and checked by ``scripts/build`` (a CI
step); here the checker itself is tested on distributions made from the
checkout's own files, whole and with a file left out or added.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.packaging import dist_contents
from tests.packaging.dist_contents import (
    DIST_NAME,
    ROOT,
    check_sdist,
    check_wheel,
    kind,
    package_files,
    source_version,
)

VERSION = source_version()
STEM = f"{DIST_NAME.replace('-', '_')}-{VERSION}"


def metadata(**changes: str) -> str:
    fields = {
        "Metadata-Version": "2.4",
        "Name": DIST_NAME,
        "Version": VERSION,
        "Requires-Python": ">=3.11",
        "License-Expression": "BSD-3-Clause",
    }
    fields.update(changes)
    lines = [f"{k}: {v}" for k, v in fields.items() if v]
    lines += ["Provides-Extra: hiredis", "Provides-Extra: metrics"]
    return "\n".join(lines) + "\n\nREADME\n"


def make_wheel(
    directory: Path, *, leave_out: str = "", add: str = "", meta: str | None = None
) -> Path:
    path = directory / f"{STEM}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name in sorted(package_files()):
            if name != leave_out:
                wheel.write(ROOT / name, name)
        if add:
            wheel.writestr(add, "")
        wheel.writestr(f"{STEM}.dist-info/METADATA", meta or metadata())
        wheel.writestr(f"{STEM}.dist-info/licenses/LICENSE", "BSD")
    return path


def make_sdist(directory: Path, *, leave_out: str = "", add: str = "") -> Path:
    path = directory / f"{STEM}.tar.gz"
    with tarfile.open(path, "w:gz") as sdist:
        names = sorted(package_files()) + list(dist_contents.SDIST_FILES)
        for name in names:
            if name != leave_out:
                sdist.add(ROOT / name, f"{STEM}/{name}")
        if add:
            sdist.add(ROOT / add, f"{STEM}/{add}")
        data = metadata().encode()
        info = tarfile.TarInfo(f"{STEM}/PKG-INFO")
        info.size = len(data)
        sdist.addfile(info, io.BytesIO(data))
    return path


def test_the_checkout_has_each_kind_of_file_the_wheel_must_carry() -> None:
    files = package_files()
    kinds = {kind(f) for f in files}
    assert {"Lua script", "template", "static file", "migration", "type marker", "module"} <= kinds
    assert "django_taskq/broker/lua/enqueue.lua" in files
    assert "django_taskq/beat/lua/lease_renew.lua" in files
    assert "django_taskq/migrations/0001_initial.py" in files
    assert "django_taskq/py.typed" in files
    assert not [f for f in files if "__pycache__" in f or f.endswith(".pyc")]


def test_source_version_reads_the_literal_without_importing() -> None:
    import django_taskq

    assert source_version() == django_taskq.__version__


def test_a_complete_wheel_and_sdist_pass(tmp_path: Path) -> None:
    assert check_wheel(make_wheel(tmp_path)) == []
    assert check_sdist(make_sdist(tmp_path)) == []
    assert dist_contents.main([str(tmp_path)]) == 0


@pytest.mark.parametrize(
    ("left_out", "what"),
    [
        ("django_taskq/broker/lua/fetch.lua", "Lua script"),
        ("django_taskq/beat/lua/lease_release.lua", "Lua script"),
        ("django_taskq/templates/admin/django_taskq/live/base.html", "template"),
        ("django_taskq/static/django_taskq/live.js", "static file"),
        ("django_taskq/migrations/0002_schedule_version_triggers.py", "migration"),
        ("django_taskq/py.typed", "type marker"),
    ],
)
def test_a_file_left_out_of_the_wheel_is_named(tmp_path: Path, left_out: str, what: str) -> None:
    problems = check_wheel(make_wheel(tmp_path, leave_out=left_out))
    assert problems == [
        f"{STEM}-py3-none-any.whl: {what} {left_out} is missing (is it matched by "
        "[tool.setuptools.package-data] in pyproject.toml?)"
    ]


def test_a_file_left_out_of_the_sdist_is_named(tmp_path: Path) -> None:
    assert check_sdist(make_sdist(tmp_path, leave_out="django_taskq/broker/lua/enqueue.lua")) == [
        f"{STEM}.tar.gz: Lua script django_taskq/broker/lua/enqueue.lua is missing (is it "
        "matched by [tool.setuptools.package-data] in pyproject.toml?)"
    ]
    assert check_sdist(make_sdist(tmp_path, leave_out="CHANGELOG.md")) == [
        f"{STEM}.tar.gz: CHANGELOG.md is missing"
    ]


def test_a_file_the_checkout_does_not_have_is_named(tmp_path: Path) -> None:
    problems = check_wheel(make_wheel(tmp_path, add="django_taskq/old_module.py"))
    assert problems == [
        f"{STEM}-py3-none-any.whl: django_taskq/old_module.py is not in the checkout "
        "(a stale build/ directory?)"
    ]
    # Another top-level package (tests, the example project) has no place in the wheel.
    problems = check_wheel(make_wheel(tmp_path, add="tests/conftest.py"))
    assert problems == [
        f"{STEM}-py3-none-any.whl: tests/conftest.py is not in the checkout "
        "(a stale build/ directory?)"
    ]


@pytest.mark.parametrize(
    "shipped", ["benchmarks/bench.py", "benchmarks/bench_app/tasks.py", "django_taskq/bench.py"]
)
def test_a_benchmark_file_in_the_wheel_is_named(tmp_path: Path, shipped: str) -> None:
    """The benchmark is a tool of the checkout: the wheel must not carry it, even under
    django_taskq/ where it used to live."""
    assert check_wheel(make_wheel(tmp_path, add=shipped)) == [
        f"{STEM}-py3-none-any.whl: {shipped} is part of the benchmark, which is not shipped "
        "(keep benchmarks/ out of [tool.setuptools.packages.find] and MANIFEST.in)"
    ]


def test_a_benchmark_file_in_the_sdist_is_named(tmp_path: Path) -> None:
    assert (ROOT / "benchmarks/bench.py").is_file()  # the benchmark's home in the checkout
    assert check_sdist(make_sdist(tmp_path, add="benchmarks/bench.py")) == [
        f"{STEM}.tar.gz: benchmarks/bench.py is part of the benchmark, which is not shipped "
        "(keep benchmarks/ out of [tool.setuptools.packages.find] and MANIFEST.in)"
    ]


def test_wrong_metadata_is_named(tmp_path: Path) -> None:
    meta = metadata(Name="django-taskq", Version="0.0.1")
    meta = meta.replace("Provides-Extra: metrics\n", "")
    problems = check_wheel(make_wheel(tmp_path, meta=meta))
    name = f"{STEM}-py3-none-any.whl"
    assert problems == [
        f"{name}: Name is 'django-taskq', expected '{DIST_NAME}'",
        f"{name}: Version is '0.0.1', expected '{VERSION}'",
        f"{name}: the extra [metrics] is not declared (Provides-Extra)",
    ]


def test_main_wants_a_wheel_and_an_sdist(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_wheel(tmp_path)
    assert dist_contents.main([str(tmp_path)]) == 2
    assert "expected a wheel and an sdist" in capsys.readouterr().out
