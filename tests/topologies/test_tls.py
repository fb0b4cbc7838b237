"""rediss+cluster:// and rediss+sentinel://: TLS to every node and Sentinel, end to end.

Each set-up is started for this module only: every node (and Sentinel)
serves TLS alone (``port 0``) with one self-signed certificate, which the
URL names as the CA (``?ssl_ca_certs=``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_taskq import chord
from django_taskq.broker.connection import get_broker
from django_taskq.testing_topologies import ClusterServers, SentinelServers
from tests.testapp.tasks import add, xsum

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def tls_setup(request: pytest.FixtureRequest) -> Iterator[ClusterServers | SentinelServers]:
    setup = ClusterServers(tls=True) if request.param == "cluster" else SentinelServers(tls=True)
    setup.start()
    yield setup
    setup.close()


def test_a_worker_runs_tasks_over_tls(
    tls_setup: ClusterServers | SentinelServers,
    start_worker: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = tls_setup.url
    assert url.startswith("rediss+") and "ssl_ca_certs=" in url
    monkeypatch.setenv("TASKQ_BROKER_URL", url)
    with override_settings(TASKQ_BROKER_URL=url):
        get_broker().flushall()
        start_worker("-P", "solo")
        assert add.delay(20, 22).get(timeout=15) == 42
        assert chord((add.s(i, i) for i in range(5)), xsum.s()).delay().get(timeout=15) == 20
