"""The endpoints in a real headless Chromium, guarded by StaffOnlyAuth: the admin's session.

A staff user logged in to the admin reads status/ and a task's status in the
browser; the same URLs answer 401 to a browser that is not logged in and 403
to a user who is not staff. (The CSRF check of a session's POST is in
test_auth.py.)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium
from tests.live_admin.test_browser import PASSWORD, by, log_in
from tests.testapp import tasks

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser() -> Iterator[Any]:
    yield from chromium("1200,900")


@pytest.fixture(autouse=True)
def _staff_only(settings: Any) -> None:
    settings.TASKQ_AUTH_HANDLERS = ["django_taskq.endpoints.auth.StaffOnlyAuth"]
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _body(browser: Any) -> Any:
    return json.loads(browser.find_element(by().TAG_NAME, "body").text)


def test_a_staff_session_reads_the_status_endpoints_and_others_are_refused(
    live_server: Any, browser: Any, django_user_model: Any
) -> None:
    django_user_model.objects.create_user("staff", password=PASSWORD, is_staff=True)
    sent = tasks.add.delay(1, 2)

    browser.get(f"{live_server.url}/tasks/status/")
    assert _body(browser) == {"error": "Authentication required"}

    log_in(browser, live_server.url, "staff")
    browser.get(f"{live_server.url}/tasks/status/")
    queues = {q["name"]: q for q in _body(browser)["queues"]}
    assert queues["default"]["ready"] == 1
    browser.get(f"{live_server.url}/tasks/status/{sent.id}/")
    task = _body(browser)["task"]
    assert (task["id"], task["state"], task["task_name"]) == (
        sent.id,
        "PENDING",
        "tests.testapp.tasks.add",
    )

    browser.delete_all_cookies()
    browser.get(f"{live_server.url}/tasks/status/{sent.id}/")
    assert _body(browser) == {"error": "Authentication required"}


def test_a_logged_in_user_who_is_not_staff_is_refused(
    live_server: Any, browser: Any, django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("plain", password=PASSWORD)
    from django.test import Client

    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    browser.get(f"{live_server.url}/tasks/status/")  # the cookie's domain must be open first
    browser.add_cookie({"name": "sessionid", "value": cookie.value, "path": "/"})
    browser.get(f"{live_server.url}/tasks/status/")
    assert _body(browser) == {"error": "Staff privileges required"}
