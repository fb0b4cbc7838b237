"""Who may call the HTTP endpoints: closed by default, and each handler's rules.

These go through Django's test client to the real views; a request a handler
lets in reaches the view (its answer is not 401/403), one it refuses gets the
handler's answer and the view never runs.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from django_taskq.endpoints.auth import signature

pytestmark = pytest.mark.django_db

SHARED = "django_taskq.endpoints.auth.SharedSecretAuth"
HMAC = "django_taskq.endpoints.auth.HMACAuth"
STAFF = "django_taskq.endpoints.auth.StaffOnlyAuth"
TOKEN = "s3cret-token"


@pytest.fixture
def client() -> Client:
    return Client(raise_request_exception=True)


def _status(client: Client, **headers: Any) -> Any:
    return client.get("/tasks/status/", headers=headers)


@pytest.mark.parametrize(
    ("method", "path", "endpoint"),
    [
        ("post", "/tasks/run/", "run"),
        ("post", "/tasks/run-one/", "run_one"),
        ("post", "/tasks/execute/some-id/", "execute"),
        ("get", "/tasks/status/", "status"),
        ("get", "/tasks/status/some-id/", "status"),
        ("post", "/tasks/purge/", "purge"),
    ],
)
def test_every_endpoint_is_closed_until_handlers_are_set(
    client: Client, method: str, path: str, endpoint: str
) -> None:
    answer = getattr(client, method)(path)
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert f"The {endpoint} endpoint is closed" in error
    assert "TASKQ_AUTH_HANDLERS" in error


def test_a_shared_secret_lets_in_only_the_right_bearer_token(client: Client, settings: Any) -> None:
    settings.TASKQ_AUTH_HANDLERS = [SHARED]
    settings.TASKQ_AUTH_HANDLER_OPTIONS = {"TOKEN": TOKEN}
    missing = _status(client)
    assert (missing.status_code, missing.json()) == (401, {"error": "Missing Authorization header"})
    assert _status(client, Authorization=TOKEN).status_code == 401  # no "Bearer "
    wrong = _status(client, Authorization="Bearer nope")
    assert (wrong.status_code, wrong.json()) == (401, {"error": "Invalid token"})
    assert _status(client, Authorization=f"Bearer {TOKEN}").status_code == 200


def test_a_shared_secret_read_from_a_setting_or_the_environment(
    client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.TASKQ_AUTH_HANDLERS = [
        {"HANDLER": SHARED, "OPTIONS": {"TOKEN_ENV": "TASKQ_TEST_CRON_TOKEN"}},
    ]
    with pytest.raises(ImproperlyConfigured, match="TASKQ_TEST_CRON_TOKEN"):
        _status(client, Authorization=f"Bearer {TOKEN}")  # unset: an error, never open
    monkeypatch.setenv("TASKQ_TEST_CRON_TOKEN", TOKEN)
    assert _status(client, Authorization=f"Bearer {TOKEN}").status_code == 200

    settings.CRON_TOKEN = "other"
    settings.TASKQ_AUTH_HANDLERS = [
        {
            "HANDLER": SHARED,
            "OPTIONS": {"TOKEN_SETTING": "CRON_TOKEN", "HEADER": "X-Cron", "SCHEME": ""},
        },
    ]
    assert _status(client, **{"X-Cron": "other"}).status_code == 200
    assert _status(client, **{"X-Cron": TOKEN}).status_code == 401


def _signed(secret: str, method: str, path: str, body: str, stamp: int) -> dict[str, str]:
    return {
        "X-Task-Timestamp": str(stamp),
        "X-Task-Signature": signature(secret, stamp, method, path, body),
    }


def test_hmac_lets_in_a_signed_request_and_refuses_a_changed_or_stale_one(
    client: Client, settings: Any
) -> None:
    settings.TASKQ_AUTH_HANDLERS = [HMAC]
    settings.TASKQ_AUTH_HANDLER_OPTIONS = {"SECRET": "hmac-secret", "MAX_AGE": 60}
    body = "days=3000"
    form = "application/x-www-form-urlencoded"
    now = int(time.time())

    good = _signed("hmac-secret", "POST", "/tasks/purge/", body, now)
    answer = client.post("/tasks/purge/", body, content_type=form, headers=good)
    assert (answer.status_code, answer.json()) == (200, {"deleted": 0})

    changed = client.post("/tasks/purge/", "days=0", content_type=form, headers=good)
    assert (changed.status_code, changed.json()) == (401, {"error": "Invalid signature"})

    other_path = _signed("hmac-secret", "POST", "/tasks/run/", body, now)
    answer = client.post("/tasks/purge/", body, content_type=form, headers=other_path)
    assert answer.status_code == 401

    stale = _signed("hmac-secret", "POST", "/tasks/purge/", body, now - 120)
    answer = client.post("/tasks/purge/", body, content_type=form, headers=stale)
    assert (answer.status_code, answer.json()) == (401, {"error": "Signature has expired"})

    wrong_key = _signed("not-it", "POST", "/tasks/purge/", body, now)
    answer = client.post("/tasks/purge/", body, content_type=form, headers=wrong_key)
    assert answer.status_code == 401
    assert client.post("/tasks/purge/", body, content_type=form).status_code == 401


def test_hmac_signs_the_query_string_too(client: Client, settings: Any) -> None:
    settings.TASKQ_AUTH_HANDLERS = [HMAC]
    settings.TASKQ_AUTH_HANDLER_OPTIONS = {"SECRET": "k"}
    now = int(time.time())
    headers = _signed("k", "GET", "/tasks/status/?queue_name=default", "", now)
    assert client.get("/tasks/status/?queue_name=default", headers=headers).status_code == 200
    assert client.get("/tasks/status/?queue_name=other", headers=headers).status_code == 401


def test_staff_only_needs_a_logged_in_staff_user(client: Client, settings: Any) -> None:
    settings.TASKQ_AUTH_HANDLERS = [STAFF]
    anonymous = _status(client)
    assert (anonymous.status_code, anonymous.json()) == (401, {"error": "Authentication required"})
    client.force_login(User.objects.create_user("ann", password="x"))
    assert _status(client).status_code == 403
    client.force_login(User.objects.create_user("bob", password="x", is_staff=True))
    assert _status(client).status_code == 200


def test_the_first_handler_that_accepts_wins_and_the_first_refusal_is_the_answer(
    client: Client, settings: Any
) -> None:
    settings.TASKQ_AUTH_HANDLERS = [STAFF, {"HANDLER": SHARED, "OPTIONS": {"TOKEN": TOKEN}}]
    assert _status(client, Authorization=f"Bearer {TOKEN}").status_code == 200
    refused = _status(client, Authorization="Bearer nope")
    assert refused.json() == {"error": "Authentication required"}  # the staff check's answer
    client.force_login(User.objects.create_user("cid", password="x", is_staff=True))
    assert _status(client).status_code == 200


def test_a_handler_limited_to_some_endpoints_leaves_the_others_closed(
    client: Client, settings: Any
) -> None:
    settings.TASKQ_AUTH_HANDLERS = [
        {"HANDLER": SHARED, "OPTIONS": {"TOKEN": TOKEN}, "ENDPOINTS": ["status"]},
    ]
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/tasks/status/", headers=bearer).status_code == 200
    purge = client.post("/tasks/purge/", headers=bearer)
    assert purge.status_code == 403
    assert "The purge endpoint is closed" in purge.json()["error"]


def test_a_plain_callable_is_a_handler(client: Client, settings: Any) -> None:
    settings.TASKQ_AUTH_HANDLERS = [lambda request: None]
    assert _status(client).status_code == 200


@pytest.mark.parametrize(
    ("handlers", "named"),
    [
        ([{"OPTIONS": {}}], "needs a HANDLER key"),
        ([{"HANDLER": SHARED, "ENDPOINTS": ["runn"]}], "['runn']: not endpoints"),
        (["django_tasks_redis.auth.SharedSecretAuth"], SHARED),
        (["no.such.Handler"], "cannot import 'no.such.Handler'"),
        ([42], "42 is not callable"),
        ([SHARED], "needs TOKEN, TOKEN_SETTING or TOKEN_ENV"),
    ],
)
def test_a_wrong_handler_setting_is_an_error_naming_it(
    client: Client, settings: Any, handlers: list[Any], named: str
) -> None:
    settings.TASKQ_AUTH_HANDLERS = handlers
    with pytest.raises(ImproperlyConfigured) as caught:
        _status(client, Authorization="Bearer x")
    assert named in str(caught.value)


def test_the_handlers_can_live_in_the_backends_options(client: Client, settings: Any) -> None:
    """A django-tasks-redis project keeps AUTH_HANDLERS where it had them: in TASKS."""
    settings.TASKS = {
        "default": {
            "BACKEND": "django_taskq.backends.TaskqBackend",
            "OPTIONS": {
                "AUTH_HANDLERS": [SHARED],
                "AUTH_HANDLER_OPTIONS": {"TOKEN": TOKEN},
            },
        }
    }
    assert _status(client).status_code == 401
    assert _status(client, Authorization=f"Bearer {TOKEN}").status_code == 200
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    unknown = client.get("/tasks/status/?backend_name=other", headers=bearer)
    assert unknown.status_code == 400
    assert "backend_name 'other' is not a TaskqBackend" in unknown.json()["error"]


def test_a_staff_sessions_post_must_pass_the_csrf_check(settings: Any) -> None:
    """A form another site makes a staff user's browser post carries the cookie, not the token."""
    settings.TASKQ_AUTH_HANDLERS = [STAFF]
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("dee", password="x", is_staff=True))
    forged = client.post("/tasks/purge/", {"days": "30"})
    assert forged.status_code == 403
    assert "CSRF check failed" in forged.json()["error"]
    assert client.get("/tasks/status/").status_code == 200  # reading needs no token

    client.get("/admin/")  # the admin sets the csrftoken cookie, as in a browser
    token = client.cookies["csrftoken"].value
    answer = client.post("/tasks/purge/", {"days": "30"}, headers={"X-CSRFToken": token})
    assert (answer.status_code, answer.json()) == (200, {"deleted": 0})


def test_a_token_request_needs_no_csrf_token(settings: Any) -> None:
    settings.TASKQ_AUTH_HANDLERS = [SHARED]
    settings.TASKQ_AUTH_HANDLER_OPTIONS = {"TOKEN": TOKEN}
    client = Client(enforce_csrf_checks=True)
    answer = client.post("/tasks/purge/", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200


def test_manage_py_check_finds_a_wrong_handler_setting_before_a_call(settings: Any) -> None:
    from django.core.checks import run_checks

    settings.TASKQ_AUTH_HANDLERS = ["django_tasks_redis.auth.SharedSecretAuth"]
    settings.TASKQ_ENDPOINT_RUN_TIMEOUT = 0
    found = {m.id: m.msg for m in run_checks() if m.id in ("taskq.E008", "taskq.E003")}
    assert SHARED in found["taskq.E008"]
    assert "TASKQ_ENDPOINT_RUN_TIMEOUT=0" in found["taskq.E003"]
    settings.TASKQ_AUTH_HANDLERS = [SHARED]
    settings.TASKQ_ENDPOINT_RUN_TIMEOUT = 30
    assert not [m for m in run_checks() if m.id in ("taskq.E008", "taskq.E003")]
