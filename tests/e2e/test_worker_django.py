"""The worker and Django: ORM use in prefork children, connections, signals."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User

from tests.testapp.tasks import make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.mark.parametrize("pool", ["prefork", "solo", "threads"])
def test_tasks_use_the_orm_in_every_pool(start_worker: Any, pool: str) -> None:
    User.objects.create(username="before")
    start_worker("-P", pool, "-c", "2")
    assert make_user.delay("alice").get(timeout=15) == ["alice", "before"]
    assert make_user.delay("bob").get(timeout=15) == ["alice", "before", "bob"]
    assert set(User.objects.values_list("username", flat=True)) == {"before", "alice", "bob"}
