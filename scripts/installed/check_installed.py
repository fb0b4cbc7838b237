"""Check what only an installed (not editable) django_taskq can get wrong.

Run by ``scripts/demo --wheel`` with the fresh virtualenv's Python, from a
copy of the example project outside the checkout, after the demo's tasks
and a periodic run went through, with the demo's Redis still up::

    DJANGO_SETTINGS_MODULE=installed_settings python check_installed.py \
        --checkout /path/to/checkout --venv /path/to/venv

Each check prints one line; the exit status is 1 if any failed. The wheel's
file list is checked apart (tests/packaging/dist_contents.py): here the
installed app must work, with the Redis and the SQLite database the demo
used.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import io
import json
import re
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path

DIST_NAME = "django-taskq-streams"
CHECKS: list[tuple[str, Callable[[argparse.Namespace], str]]] = []


class Failed(Exception):
    """A check found something wrong; the message says what."""


def check(title: str) -> Callable[[Callable[[argparse.Namespace], str]], Callable[..., str]]:
    """Register a check: a function returning what it saw, or raising Failed."""

    def register(func: Callable[[argparse.Namespace], str]) -> Callable[..., str]:
        CHECKS.append((title, func))
        return func

    return register


@check("django_taskq comes from the virtualenv, not the checkout")
def imported_from_venv(args: argparse.Namespace) -> str:
    import django_taskq

    where = Path(django_taskq.__file__).resolve()
    if args.checkout.resolve() in where.parents:
        raise Failed(f"imported from the checkout: {where}")
    if args.venv.resolve() not in where.parents:
        raise Failed(f"imported from {where}, outside {args.venv}")
    return str(where.parent)


@check("installed from a wheel, not editable")
def not_editable(args: argparse.Namespace) -> str:
    text = importlib.metadata.distribution(DIST_NAME).read_text("direct_url.json") or "{}"
    direct_url = json.loads(text)
    if direct_url.get("dir_info", {}).get("editable"):
        raise Failed(f"{DIST_NAME} is an editable install")
    return str(direct_url.get("url", "(no direct_url.json)"))


@check("django_taskq.__version__ is the installed distribution's version")
def version(args: argparse.Namespace) -> str:
    import django_taskq

    installed = importlib.metadata.version(DIST_NAME)
    if installed != django_taskq.__version__:
        raise Failed(f"metadata {installed} != django_taskq.__version__ {django_taskq.__version__}")
    return installed


@check("py.typed is installed (type checkers read the package's hints)")
def py_typed(args: argparse.Namespace) -> str:
    if not resources.files("django_taskq").joinpath("py.typed").is_file():
        raise Failed("django_taskq/py.typed is missing")
    return "present"


@check("every Lua script is installed and compiles in Redis (SCRIPT LOAD)")
def lua_scripts(args: argparse.Namespace) -> str:
    from django_taskq.broker import scripts
    from django_taskq.broker.connection import get_broker

    source = args.checkout / "django_taskq"
    expected = sorted(p.relative_to(source).as_posix() for p in source.rglob("*.lua"))
    installed_root = resources.files("django_taskq")
    missing = [p for p in expected if not installed_root.joinpath(p).is_file()]
    if missing:
        raise Failed(f"not installed: {', '.join(missing)}")
    client = get_broker()
    for path in expected:
        client.script_load(installed_root.joinpath(path).read_text())
    scripts.load_all(client)
    return f"{len(expected)} scripts"


@check("the admin's translations are installed (ja, es, pt_BR, zh_Hans catalogs load)")
def translations(args: argparse.Namespace) -> str:
    from django.utils import translation

    found = []
    for language in LANGUAGES:
        with translation.override(language):
            said = str(translation.gettext("Tasks (django_taskq)"))
        if said == "Tasks (django_taskq)":
            raise Failed(f"no {language} catalog: the app's name is not translated")
        found.append(f"{language}: {said}")
    return "; ".join(found)


#: The admin's languages (django_taskq/locale/).
LANGUAGES = ("ja", "es", "pt-br", "zh-hans")


@check("the migrations match the models (makemigrations --check)")
def migrations(args: argparse.Namespace) -> str:
    from django.core.management import call_command

    try:
        call_command("makemigrations", "django_taskq", check=True, dry_run=True, verbosity=0)
    except SystemExit as exc:
        raise Failed("the models have changes no installed migration holds") from exc
    from django.db.migrations.recorder import MigrationRecorder

    applied = MigrationRecorder.Migration.objects.filter(app="django_taskq").count()
    return f"{applied} applied, none missing"


@check("manage.py check passes")
def system_checks(args: argparse.Namespace) -> str:
    from django.core.management import call_command

    out = io.StringIO()
    call_command("check", fail_level="ERROR", stdout=out, stderr=out)
    return out.getvalue().strip().splitlines()[-1]


@check("every django_taskq admin page renders, with its static files")
def admin_pages(args: argparse.Namespace) -> str:
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.contrib.staticfiles import finders
    from django.test import Client
    from django.urls import reverse

    user, _ = get_user_model().objects.get_or_create(
        username="installed-check", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    models = sorted(
        (m._meta.model_name for m in admin.site._registry if m._meta.app_label == "django_taskq"),
        key=str,
    )
    urls = [reverse("admin:app_list", args=["django_taskq"])]
    urls += [reverse(f"admin:django_taskq_{name}_changelist") for name in models]
    statics: set[str] = set()
    for url in urls:
        response = client.get(url)
        if response.status_code != 200:
            raise Failed(f"GET {url}: {response.status_code}")
        statics.update(re.findall(r'(?:href|src)="/static/([^"?#]+)', response.content.decode()))
    missing = sorted(s for s in statics if not finders.find(s))
    if missing:
        raise Failed(f"static files the pages link to are not found: {', '.join(missing)}")
    ours = sorted(s for s in statics if s.startswith("django_taskq/"))
    return f"{len(urls)} pages; static files found, ours: {', '.join(ours) or 'none'}"


@check("the HTTP endpoint run/ runs a task on a burst worker started from the installed package")
def endpoint_run(args: argparse.Namespace) -> str:
    from demo.tasks import add
    from django.test import Client, override_settings

    # A queue the demo's own worker does not read, so only the endpoint's worker can run it.
    sent = add.apply_async((20, 22), queue="endpoint-check")
    handlers = ["django_taskq.endpoints.auth.SharedSecretAuth"]
    with override_settings(
        TASKQ_AUTH_HANDLERS=handlers, TASKQ_AUTH_HANDLER_OPTIONS={"TOKEN": "check"}
    ):
        response = Client(HTTP_HOST="localhost").post(
            "/tasks/run/",
            {"queue_name": "endpoint-check"},
            headers={"Authorization": "Bearer check"},
        )
    if response.status_code != 200:
        raise Failed(f"POST /tasks/run/: {response.status_code} {response.content[:2000]!r}")
    answer = response.json()
    if answer != {"processed": 1, "failed": 0, "timed_out": False}:
        raise Failed(f"POST /tasks/run/ answered {answer}")
    result = sent.get(timeout=10)
    if result != 42:
        raise Failed(f"the task returned {result!r}, not 42")
    return f"{answer}; add(20, 22) = {result}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkout", type=Path, required=True, help="The source checkout.")
    parser.add_argument("--venv", type=Path, required=True, help="The virtualenv installed into.")
    args = parser.parse_args()

    import django

    django.setup()
    failed = 0
    for title, func in CHECKS:
        try:
            print(f"  ok    {title}: {func(args)}")
        except Exception as exc:  # report every check, then fail
            failed += 1
            print(f"  FAIL  {title}: {type(exc).__name__}: {exc}")
    print(f"{len(CHECKS) - failed} of {len(CHECKS)} checks passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
