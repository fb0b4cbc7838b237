"""The metrics view, the bearer token, and life without prometheus_client."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from django.urls import reverse

import django_taskq.metrics
from django_taskq.checks import check_settings
from django_taskq.metrics.exposition import MISSING
from tests.metrics.scrape import parse, value
from tests.testapp.tasks import add

URL = "/taskq/metrics"


def test_the_route_is_named_taskq_metrics() -> None:
    assert reverse("taskq-metrics") == URL


def test_without_a_token_scraping_is_open(client: Client, broker: Any) -> None:
    add.apply_async((1, 2), queue="work")
    response = client.get(URL)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    samples, _ = parse(response.content.decode())
    assert value(samples, "taskq_queue_length", queue="work") == 1


@override_settings(TASKQ_METRICS_TOKEN="s3cret-token")
@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer wrong", "Bearer s3cret-token-and-more", "Basic s3cret-token"],
)
def test_a_missing_or_wrong_token_gets_401_with_a_challenge(
    client: Client, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = client.get(URL, headers=headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer ")
    assert b"taskq_" not in response.content


@override_settings(TASKQ_METRICS_TOKEN="s3cret-token")
@pytest.mark.parametrize("header", ["Bearer s3cret-token", "bearer s3cret-token"])
def test_the_right_token_scrapes(client: Client, header: str) -> None:
    response = client.get(URL, headers={"Authorization": header})
    assert response.status_code == 200
    samples, _ = parse(response.content.decode())
    assert value(samples, "taskq_broker_up") == 1


def test_openmetrics_is_served_when_asked_for(client: Client) -> None:
    response = client.get(URL, headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text")
    assert response.content.endswith(b"# EOF\n")


def test_only_get_and_head(client: Client) -> None:
    assert client.head(URL).status_code == 200
    assert client.post(URL).status_code == 405


# -- without prometheus_client -------------------------------------------------------
@pytest.fixture
def without_prometheus_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Imports of prometheus_client fail, as when the [metrics] extra is not installed."""
    for name in [
        n for n in sys.modules if n == "prometheus_client" or n.startswith("prometheus_client.")
    ]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    monkeypatch.delitem(sys.modules, "django_taskq.metrics.prometheus", raising=False)
    monkeypatch.delattr(django_taskq.metrics, "prometheus", raising=False)
    yield


@pytest.mark.usefixtures("without_prometheus_client")
def test_the_view_names_the_extra_to_install(client: Client) -> None:
    with pytest.raises(
        ImproperlyConfigured, match=r"pip install 'django-taskq-streams\[metrics\]'"
    ):
        client.get(URL)


@pytest.mark.usefixtures("without_prometheus_client")
@override_settings(TASKQ_METRICS_TOKEN="s3cret-token")
def test_without_the_library_a_stranger_still_gets_401_only(client: Client) -> None:
    assert client.get(URL).status_code == 401


@pytest.mark.usefixtures("without_prometheus_client")
def test_the_worker_option_names_the_extra_to_install() -> None:
    with pytest.raises(
        CommandError, match=r"--metrics-port: .*pip install 'django-taskq-streams\[metrics\]'"
    ):
        call_command("taskq_worker", "--metrics-port", "0")


@pytest.mark.usefixtures("without_prometheus_client")
def test_a_system_check_warns_when_metrics_are_set_up_but_the_library_is_missing() -> None:
    # tests/urls.py routes django_taskq.urls, so the view is set up.
    (warning,) = [m for m in check_settings() if m.id == "taskq.W003"]
    assert MISSING in warning.msg
    with override_settings(ROOT_URLCONF="tests.metrics.no_urls"):
        assert not [m for m in check_settings() if m.id == "taskq.W003"]
        with override_settings(TASKQ_METRICS_TOKEN="x"):
            assert [m for m in check_settings() if m.id == "taskq.W003"]


def test_no_warning_when_the_library_is_there() -> None:
    assert not [m for m in check_settings() if m.id == "taskq.W003"]


# -- taskq_worker --metrics-port, in process ------------------------------------------
def test_a_port_in_use_fails_the_command_before_the_worker_starts() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        with pytest.raises(CommandError, match=f"--metrics-port {port}: cannot listen"):
            call_command("taskq_worker", "--metrics-port", str(port), "--metrics-addr", "127.0.0.1")
    finally:
        taken.close()


def test_a_port_out_of_range_is_refused() -> None:
    with pytest.raises(CommandError, match="not a TCP port"):
        call_command("taskq_worker", "--metrics-port", "70000")


@pytest.mark.parametrize("token", ["", "  "])
def test_an_empty_token_is_open_and_the_check_says_so(client: Client, token: str) -> None:
    with override_settings(TASKQ_METRICS_TOKEN=token):
        assert client.get(URL).status_code == 200
        assert [m.id for m in check_settings() if m.id == "taskq.W004"] == ["taskq.W004"]
    assert not [m for m in check_settings() if m.id == "taskq.W004"]
