"""scripts/test and scripts/demo refuse what cannot work, at once and saying what to do.

A ``.venv`` made with a Python older than 3.11 used to fail in ``pip
install`` on every run; a demo without ``TASKQ_BROKER_URL`` used whatever
Redis answered on 127.0.0.1:6379. The demo's full run (its own Redis, a
worker, the tasks, and the same on an installed wheel) is a CI step of its
own (``.ci/run``: scripts/demo, scripts/build, scripts/demo --wheel).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.packaging.dist_contents import ROOT


def old_python() -> Path | None:
    """An interpreter older than 3.11 on this machine (pyenv's or on PATH), or None."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = sorted(pyenv.glob("3.*/bin/python3.*"), reverse=True)
    candidates += [Path(f"/usr/bin/python3.{minor}") for minor in (10, 9, 8)]
    for candidate in candidates:
        if not candidate.name.removeprefix("python3.").isdigit():
            continue  # python3.10-config and the like
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info < (3, 11))"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    return None


OLD_PYTHON = old_python()
needs_old_python = pytest.mark.skipif(
    OLD_PYTHON is None, reason="no Python older than 3.11 on this machine"
)


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("TASKQ_BROKER_URL", "PYTHON")}
    environ.update(env)
    return subprocess.run(
        [ROOT / "scripts" / script, *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


@needs_old_python
@pytest.mark.parametrize("script", ["test", "demo"])
def test_a_venv_of_an_old_python_is_refused_with_what_to_do(tmp_path: Path, script: str) -> None:
    assert OLD_PYTHON is not None
    venv = tmp_path / "venv"
    subprocess.run([OLD_PYTHON, "-m", "venv", "--without-pip", venv], check=True)
    made = subprocess.run(
        [venv / "bin" / "python", "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()

    for _ in range(2):  # the same clear message every time, nothing half-done in between
        done = run(script, TASKQ_VENV=str(venv))
        assert done.returncode == 1
        assert done.stderr == (
            f"{ROOT}/scripts/{script}: {venv} was made with Python {made}; django_taskq needs "
            f"Python 3.11 or newer. Remove it (rm -rf {venv}) and run this again with a newer "
            f"Python on PATH as python3, or name one: PYTHON=python3.12 {ROOT}/scripts/{script}\n"
        )
        assert done.stdout == ""


@needs_old_python
def test_an_old_python_makes_no_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = run("test", TASKQ_VENV=str(venv), PYTHON=str(OLD_PYTHON))
    assert done.returncode == 1
    assert f"{OLD_PYTHON} is Python 3." in done.stderr
    assert "django_taskq needs Python 3.11 or newer" in done.stderr
    assert not venv.exists()


def test_the_demo_without_redis_server_or_url_names_both_and_touches_nothing(
    tmp_path: Path,
) -> None:
    venv = tmp_path / "venv"
    done = run("demo", TASKQ_VENV=str(venv), TASKQ_REDIS_SERVER=str(tmp_path / "no-redis-server"))
    assert done.returncode == 1
    assert "is not installed" in done.stderr
    assert "or set TASKQ_BROKER_URL" in done.stderr
    assert not venv.exists()  # decided before making anything


@pytest.mark.parametrize("given", ["missing.whl", "", "README.md"])
def test_the_demo_refuses_what_is_not_a_wheel_file(tmp_path: Path, given: str) -> None:
    (tmp_path / "README.md").write_text("")
    path = str(tmp_path / given) if given else ""
    done = run("demo", "--wheel", path)
    assert done.returncode == 1
    assert done.stderr == (
        f"{ROOT}/scripts/demo: --wheel {path}: not a wheel file "
        "(scripts/build makes one in dist/)\n"
    )


def test_the_demo_checks_its_python_before_making_a_venv_for_a_wheel(tmp_path: Path) -> None:
    wheel = tmp_path / "django_taskq_streams-0.0.0-py3-none-any.whl"
    wheel.write_bytes(b"")
    done = run("demo", "--wheel", str(wheel), PYTHON=str(OLD_PYTHON or "no-such-python"))
    assert done.returncode == 1
    assert "is not Python 3.11 or newer" in done.stderr
