"""The live admin pages through Django's test client, on real Redis data.

What each page shows, what each action changes in Redis, who may see and
do what, and that neither odd bytes in Redis nor Redis being down turns
into a 500. The browser tests (test_browser.py) drive the same pages in
Chromium.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import pytest
from django.db import connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext

from django_taskq.broker import keys
from django_taskq.testing import free_port

from .conftest import dead_letter, envelope_body, logged_in

pytestmark = pytest.mark.django_db

QUEUES = "/admin/django_taskq/queue/"
DEAD = "/admin/django_taskq/deadletter/"
WORKERS = "/admin/django_taskq/worker/"
DASHBOARD = "/admin/django_taskq/dashboard/"
PAGES = [QUEUES, DEAD, WORKERS, DASHBOARD, f"{QUEUES}messages/?queue=shop"]
ACTIONS = [
    (f"{QUEUES}purge/", {"queue": "shop"}),
    (f"{DEAD}act/", {"op": "delete", "entry": "shop 1-1"}),
    (f"{WORKERS}act/", {"op": "shutdown", "worker": "taskq@web1", "confirmed": "yes"}),
]


def text(response: Any) -> str:
    return response.content.decode()


# -- the admin index and the models' own URLs ---------------------------------------------


def test_the_index_lists_the_pages_without_add_links(admin_client: Client) -> None:
    page = text(admin_client.get("/admin/"))
    for url in (QUEUES, DEAD, WORKERS, DASHBOARD):
        assert f'href="{url}"' in page
        assert f'href="{url}add/"' not in page


@pytest.mark.parametrize("url", [f"{QUEUES}1/change/", f"{QUEUES}add/", f"{DEAD}1/delete/"])
def test_the_default_model_views_do_not_exist(admin_client: Client, url: str) -> None:
    assert admin_client.get(url).status_code == 404


def test_no_page_queries_the_tables_the_models_do_not_have(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    with CaptureQueriesContext(connection) as queries:
        for url in PAGES:
            assert admin_client.get(url).status_code == 200, url
    tables = ("django_taskq_queue", "django_taskq_worker", "django_taskq_deadletter", "dashboard")
    assert not [q["sql"] for q in queries if any(t in q["sql"] for t in tables)]


# -- permissions and CSRF --------------------------------------------------------------------


@pytest.mark.parametrize("url", [*PAGES, f"{QUEUES}?format=json", f"{QUEUES}purge/?queue=shop"])
def test_a_user_without_permission_gets_403(nobody_client: Client, url: str) -> None:
    assert nobody_client.get(url).status_code == 403


@pytest.mark.parametrize("url, data", ACTIONS)
def test_a_view_only_user_cannot_act(
    viewer_client: Client, broker: Any, url: str, data: Any
) -> None:
    from tests.testapp.tasks import add

    add.apply_async((1, 2), queue="shop")
    assert viewer_client.post(url, data).status_code == 403
    assert viewer_client.get(f"{QUEUES}purge/?queue=shop").status_code == 403
    assert broker.xlen(keys.stream("shop", 5)) == 1


def test_a_view_only_user_sees_the_pages_without_buttons(
    viewer_client: Client, redis_data: dict[str, Any]
) -> None:
    for url in PAGES:
        response = viewer_client.get(url)
        assert response.status_code == 200, url
        page = text(response)
        assert "taskq-purge" not in page
        assert 'name="op"' not in page
        assert "csrfmiddlewaretoken" not in page.split('id="content"')[1]
    assert "dead-1" in text(viewer_client.get(DEAD))


@pytest.mark.parametrize("url, data", ACTIONS)
def test_a_post_without_csrf_token_is_refused(
    superuser: Any, broker: Any, url: str, data: Any
) -> None:
    from tests.testapp.tasks import add

    add.apply_async((1, 2), queue="shop")
    client = logged_in(superuser, enforce_csrf_checks=True)
    response = client.post(url, data)
    assert response.status_code == 403
    assert "CSRF" in text(response)
    assert broker.xlen(keys.stream("shop", 5)) == 1


def test_acting_views_refuse_get(admin_client: Client) -> None:
    assert admin_client.get(f"{DEAD}act/").status_code == 405


# -- queues ------------------------------------------------------------------------------------


def test_queues_page_counts_per_queue_and_priority(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    response = admin_client.get(QUEUES)
    assert response.status_code == 200
    rows = {row["stats"].name: row["stats"] for row in response.context["queues"]}
    shop = rows["shop"]
    assert (shop.ready, shop.in_flight, shop.delayed, shop.dead) == (3, 0, 1, 2)
    assert [(p.priority, p.ready) for p in shop.priorities] == [(9, 2), (2, 1)]
    assert (rows["mail"].ready, rows["mail"].dead) == (1, 0)
    page = text(response)
    assert f'href="{QUEUES}messages/?queue=shop#ready">3</a>' in page
    assert f'href="{QUEUES}messages/?queue=shop#delayed">1</a>' in page
    assert f'href="{DEAD}?queue=shop">2</a>' in page
    assert f'href="{QUEUES}purge/?queue=shop"' in page
    assert 'data-priority="9"' in page


def test_queues_json_is_the_fragment_and_the_numbers(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    response = admin_client.get(f"{QUEUES}?format=json")
    assert response["Content-Type"] == "application/json"
    data = json.loads(response.content)
    assert 'id="taskq-queues"' in data["html"]
    assert "<html" not in data["html"]
    shop = next(q for q in data["data"]["queues"] if q["name"] == "shop")
    assert shop["ready"] == 3 and shop["delayed"] == 1


def test_in_flight_messages_show_the_consumer_holding_them(
    admin_client: Client, broker: Any
) -> None:
    from tests.testapp.tasks import add

    add.apply_async((1, 2), queue="shop")
    stream = keys.stream("shop", 5)
    broker.xgroup_create(stream, keys.GROUP, id="0", mkstream=True)
    broker.xreadgroup(keys.GROUP, "taskq@web1:123:abc:0", {stream: ">"}, count=1)
    response = admin_client.get(QUEUES)
    shop = response.context["queues"][0]["stats"]
    assert (shop.ready, shop.in_flight) == (0, 1)
    assert shop.consumers == {"taskq@web1:123:abc:0": 1}
    assert f'href="{WORKERS}#worker-taskq-web1-123-abc"' in text(response)
    detail = text(admin_client.get(f"{QUEUES}messages/?queue=shop"))
    assert "taskq@web1:123:abc:0" in detail


def test_queue_messages_lists_ready_and_delayed(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    response = admin_client.get(f"{QUEUES}messages/?queue=shop")
    assert response.status_code == 200
    ready = [row["message"] for row in response.context["ready"]]
    # Priority 9 first, oldest first within a priority.
    assert [m.task_id for m in ready] == redis_data["ready"][:3]
    assert ready[0].task == "tests.testapp.tasks.add" and ready[0].args == "[1, 2]"
    delayed = response.context["delayed"]
    assert [row["message"].task_id for row in delayed] == redis_data["delayed"]
    assert delayed[0]["eta"].timestamp() == pytest.approx(time.time() + 3600, abs=60)
    page = text(response)
    assert redis_data["ready"][0] in page and "[1, 2]" in page


def test_queue_messages_limit(admin_client: Client, redis_data: dict[str, Any]) -> None:
    response = admin_client.get(f"{QUEUES}messages/?queue=shop&limit=1")
    assert len(response.context["ready"]) == 1
    assert admin_client.get(f"{QUEUES}messages/?queue=shop&limit=x").status_code == 200


def test_an_unreadable_queued_entry_is_shown_as_such(admin_client: Client, broker: Any) -> None:
    broker.sadd(keys.queues(), "odd")
    broker.xadd(keys.stream("odd", 5), {"i": b"\xff\xfe", "b": b"\x00\x01 not json"})
    broker.xadd(keys.stream("odd", 5), {"x": "no fields we know"})
    broker.zadd(keys.delayed("odd"), {b"garbage without newlines \xff": 1})
    response = admin_client.get(f"{QUEUES}messages/?queue=odd")
    assert response.status_code == 200
    assert [row["readable"] for row in response.context["ready"]] == [False, False]
    assert [row["readable"] for row in response.context["delayed"]] == [False]
    assert text(response).count('class="taskq-unreadable"') == 3


@pytest.mark.parametrize("queue", ["", "has space", "{brace}"])
def test_a_bad_queue_name_is_404(admin_client: Client, queue: str) -> None:
    assert admin_client.get(f"{QUEUES}messages/", {"queue": queue}).status_code == 404
    assert admin_client.post(f"{QUEUES}purge/", {"queue": queue}).status_code == 404


def test_purge_asks_first_then_deletes_waiting_messages(
    admin_client: Client, broker: Any, redis_data: dict[str, Any]
) -> None:
    confirm = admin_client.get(f"{QUEUES}purge/?queue=shop")
    assert confirm.status_code == 200
    page = text(confirm)
    assert "3 ready and 1" in page and 'id="taskq-confirm-purge"' in page
    assert broker.xlen(keys.stream("shop", 9)) == 2  # nothing purged by looking

    response = admin_client.post(f"{QUEUES}purge/", {"queue": "shop"}, follow=True)
    assert response.redirect_chain[-1][0] == QUEUES
    assert "Purged 4 messages from queue shop." in text(response)
    assert sum(broker.xlen(s) for s in keys.queue_streams("shop")) == 0
    assert broker.zcard(keys.delayed("shop")) == 0
    assert broker.xlen(keys.dead("shop")) == 2  # dead letters stay
    assert broker.xlen(keys.stream("mail", 5)) == 1  # other queues stay


# -- dead letters ------------------------------------------------------------------------------


def test_dead_letters_show_their_reasons_and_unreadable_bodies(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    response = admin_client.get(DEAD)
    assert response.status_code == 200
    rows = response.context["rows"]
    assert [r["entry_id"] for r in rows] == redis_data["dead"][::-1]  # newest first
    assert rows[0]["readable"] is False and rows[1]["readable"] is True
    assert rows[1]["shown"].task == "tests.testapp.tasks.add"
    page = text(response)
    assert "task tests.testapp.tasks.add failed 3 deliveries" in page
    assert "message body is not UTF-8" in page
    assert "taskq-unreadable" in page
    assert 'href="?queue=shop">shop (2)</a>' in page


# Bodies with a serializer or a compression (codecs.py): the page decodes them as a worker
# would; what this process cannot decode is a row that says why, never a 500.
CODED = [("msgpack", None), ("json", "zlib"), ("msgpack", "zlib"), ("msgpack", "zstd")]


@pytest.mark.parametrize("serializer, compression", CODED)
def test_dead_letters_show_coded_bodies_decoded_with_their_content(
    admin_client: Client, broker: Any, serializer: str, compression: str | None
) -> None:
    body = envelope_body(
        "tests.testapp.tasks.echo", "coded-1", [7, "eight"], serializer, compression, {"n": 9}
    )
    assert isinstance(body, bytes)  # as Redis gets it, not text
    content = f"{serializer}+{compression}" if compression else serializer
    assert body.startswith(f"{content}:".encode())
    dead_letter(broker, "shop", body, "message is msgpack but this worker accepts only ['json']")
    response = admin_client.get(DEAD)
    [row] = response.context["rows"]
    assert row["readable"] is True
    shown = row["shown"]
    assert (shown.task, shown.task_id, shown.args, shown.kwargs, shown.content) == (
        "tests.testapp.tasks.echo",
        "coded-1",
        "[7, 'eight']",
        "{'n': 9}",
        content,
    )
    page = text(response)
    label = 'title="Serializer and compression of the message"'
    assert f'<span class="taskq-content" {label}>{content}</span>' in page
    assert 'class="taskq-unreadable"' not in page


def test_a_plain_json_dead_letter_shows_no_content_label(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    assert 'class="taskq-content"' not in text(admin_client.get(DEAD))


def test_a_body_this_process_cannot_decode_is_shown_with_the_reason(
    admin_client: Client, broker: Any, monkeypatch: Any
) -> None:
    good = envelope_body("tests.testapp.tasks.echo", "z-1", [1], "msgpack", "zstd")
    cut = envelope_body("tests.testapp.tasks.echo", "z-2", [2], "json", "zlib")[:-6]
    dead_letter(broker, "shop", good, "r", task_id="z-1")
    dead_letter(broker, "shop", cut, "r", task_id="z-2")
    dead_letter(broker, "shop", b"msgpack:\xc1", "r", task_id="z-3")
    monkeypatch.setitem(sys.modules, "zstandard", None)  # not installed in the web process
    response = admin_client.get(DEAD)
    assert response.status_code == 200
    rows = {r["shown"].task_id: r for r in response.context["rows"]}
    assert not any(r["readable"] for r in rows.values())
    assert [rows[i]["shown"].content for i in ("z-1", "z-2", "z-3")] == [
        "msgpack+zstd",
        "json+zlib",
        "msgpack",
    ]
    assert "pip install django-taskq-streams[zstd]" in rows["z-1"]["shown"].args
    assert "not installed in this process" in rows["z-1"]["shown"].args
    assert "zlib data is truncated" in rows["z-2"]["shown"].args
    assert "msgpack data cannot be decoded" in rows["z-3"]["shown"].args
    page = text(response)
    assert page.count('class="taskq-unreadable"') == 3
    assert "\ufffd" not in page  # no binary bytes shown as text


def test_requeue_puts_a_coded_body_back_byte_for_byte(admin_client: Client, broker: Any) -> None:
    body = envelope_body("tests.testapp.tasks.echo", "coded-2", [(1, 2)], "msgpack", "zlib")
    entry = dead_letter(broker, "shop", body, "r", task_id="coded-2")
    response = admin_client.post(
        f"{DEAD}act/", {"op": "requeue", "entry": f"shop {entry}"}, follow=True
    )
    assert "Requeued 1 dead letter." in text(response)
    [(_, fields)] = broker.xrange(keys.stream("shop", 5))
    assert fields[b"b"] == body


def test_requeue_refuses_what_no_worker_could_decode_and_says_why(
    admin_client: Client, broker: Any, monkeypatch: Any
) -> None:
    good = envelope_body("tests.testapp.tasks.echo", "ok-1", [1], "msgpack", "zstd")
    cut = envelope_body("tests.testapp.tasks.echo", "cut-1", [2], "msgpack", "zlib")[:-6]
    a = dead_letter(broker, "shop", good, "r", task_id="ok-1")
    b = dead_letter(broker, "shop", cut, "r", task_id="cut-1")
    c = dead_letter(broker, "shop", b"\xff\xfe not json {", "r")
    # Missing here is no reason to refuse: the workers may have zstandard.
    monkeypatch.setitem(sys.modules, "zstandard", None)
    response = admin_client.post(
        f"{DEAD}act/",
        {"op": "requeue", "entry": [f"shop {a}", f"shop {b}", f"shop {c}"], "confirmed": "yes"},
        follow=True,
    )
    assert response.status_code == 200
    page = text(response)
    assert "Requeued 1 dead letter." in page
    assert (
        f"Not requeued: dead letter {b} of queue shop: message body: zlib data is truncated. "
        "A worker would dead-letter it again; delete it, or send the task anew."
    ) in page
    assert f"Not requeued: dead letter {c} of queue shop: message body is not UTF-8" in page
    assert [f[b"b"] for _, f in broker.xrange(keys.stream("shop", 5))] == [good]
    assert [e.decode() for e, _ in broker.xrange(keys.dead("shop"))] == [b, c]


def test_dead_letters_filter_by_queue(admin_client: Client, broker: Any) -> None:
    dead_letter(broker, "a", envelope_body("t.a", "id-a", []), "reason a")
    dead_letter(broker, "b", envelope_body("t.b", "id-b", []), "reason b")
    rows = admin_client.get(DEAD, {"queue": "b"}).context["rows"]
    assert [r["queue"] for r in rows] == ["b"]
    rows = admin_client.get(DEAD, {"queue": "no-such"}).context["rows"]  # unknown: all
    assert sorted(r["queue"] for r in rows) == ["a", "b"]


def test_dead_letters_page_through_every_entry_once(admin_client: Client, broker: Any) -> None:
    made = []
    for n in range(130):
        queue = "left" if n % 3 else "right"
        made.append((queue, dead_letter(broker, queue, envelope_body("t", f"id-{n}", [n]), "r")))
    seen: list[tuple[str, str]] = []
    url = DEAD
    pages = 0
    while url:
        response = admin_client.get(url)
        rows = response.context["rows"]
        assert len(rows) <= 50
        seen += [(r["queue"], r["entry_id"]) for r in rows]
        older = response.context["older_url"]
        url = f"{DEAD}{older}" if older else ""
        pages += 1
    assert pages == 3
    # Newest first; entries of two queues added in the same millisecond by queue name.
    assert seen == sorted(made, key=lambda m: (*map(int, m[1].split("-")), m[0]), reverse=True)


def test_a_bad_cursor_shows_the_first_page(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    response = admin_client.get(DEAD, {"before": "nonsense"})
    assert len(response.context["rows"]) == 2


def test_requeue_one_dead_letter(
    admin_client: Client, broker: Any, redis_data: dict[str, Any]
) -> None:
    entry = redis_data["dead"][0]
    response = admin_client.post(
        f"{DEAD}act/", {"op": "requeue", "entry": f"shop {entry}", "queue": "shop"}, follow=True
    )
    assert response.redirect_chain[-1][0] == f"{DEAD}?queue=shop"
    assert "Requeued 1 dead letter." in text(response)
    assert broker.xlen(keys.dead("shop")) == 1
    back = broker.xrange(keys.stream("shop", 5))
    assert [fields[b"i"] for _, fields in back] == [b"dead-1"]
    assert back[0][1][b"dc"] == b"0"


def test_delete_one_dead_letter(
    admin_client: Client, broker: Any, redis_data: dict[str, Any]
) -> None:
    entry = redis_data["dead"][1]
    response = admin_client.post(
        f"{DEAD}act/", {"op": "delete", "entry": f"shop {entry}"}, follow=True
    )
    assert "Deleted 1 dead letter." in text(response)
    assert [e.decode() for e, _ in broker.xrange(keys.dead("shop"))] == [redis_data["dead"][0]]


def test_bulk_actions_ask_for_confirmation(
    admin_client: Client, broker: Any, redis_data: dict[str, Any]
) -> None:
    entries = [f"shop {e}" for e in redis_data["dead"]]
    confirm = admin_client.post(f"{DEAD}act/", {"op": "delete", "entry": entries})
    assert confirm.status_code == 200
    page = text(confirm)
    assert "Delete these 2 dead letters?" in page
    assert all(e.split()[1] in page for e in entries)
    assert broker.xlen(keys.dead("shop")) == 2  # nothing deleted yet

    response = admin_client.post(
        f"{DEAD}act/", {"op": "delete", "entry": entries, "confirmed": "yes"}, follow=True
    )
    assert "Deleted 2 dead letters." in text(response)
    assert broker.xlen(keys.dead("shop")) == 0


def test_bulk_requeue_across_queues(admin_client: Client, broker: Any) -> None:
    a = dead_letter(broker, "a", envelope_body("t.a", "id-a", []), "r")
    b = dead_letter(broker, "b", envelope_body("t.b", "id-b", []), "r")
    response = admin_client.post(
        f"{DEAD}act/",
        {"op": "requeue", "entry": [f"a {a}", f"b {b}"], "confirmed": "yes"},
        follow=True,
    )
    assert "Requeued 2 dead letters." in text(response)
    assert broker.xlen(keys.stream("a", 5)) == broker.xlen(keys.stream("b", 5)) == 1


def test_acting_on_entries_gone_meanwhile_says_so(admin_client: Client, broker: Any) -> None:
    response = admin_client.post(f"{DEAD}act/", {"op": "delete", "entry": "shop 1-1"}, follow=True)
    assert "Deleted 0 dead letters. 1 was gone already." in text(response)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"op": "delete"}, "Select dead letters first"),
        ({"op": "delete", "entry": "no-id-here"}, "Select dead letters first"),
        ({"op": "explode", "entry": "shop 1-1"}, "Choose requeue or delete."),
    ],
)
def test_bad_action_input_is_a_message(
    admin_client: Client, broker: Any, redis_data: dict[str, Any], data: Any, message: str
) -> None:
    response = admin_client.post(f"{DEAD}act/", data, follow=True)
    assert response.status_code == 200
    assert message in text(response)
    assert broker.xlen(keys.dead("shop")) == 2


# -- workers -----------------------------------------------------------------------------------


def remember_worker(broker: Any, name: str, info: Any, beat_age: float) -> None:
    """A worker's description and index entry, as its heartbeat thread writes them."""
    beat_ms = int((time.time() - beat_age) * 1000)
    raw = info if isinstance(info, bytes) else json.dumps(info)
    broker.set(keys.worker_info(name), raw)
    broker.zadd(keys.workers(), {name: beat_ms})


def test_workers_page_shows_a_real_worker(admin_client: Client, start_worker: Any) -> None:
    worker = start_worker("-P", "threads", "-c", "2", "-Q", "shop,mail", "-n", "web1")
    response = admin_client.get(WORKERS)
    assert response.status_code == 200
    rows = response.context["workers"]
    assert len(rows) == 1
    state = rows[0]["worker"]
    assert state.online and state.pid == worker.pid
    assert (state.hostname, state.pool, state.concurrency) == ("web1", "threads", 2)
    assert state.queues == ["shop", "mail"]
    page = text(response)
    assert "taskq-badge-online" in page and f">{worker.pid}<" in page


def test_offline_workers_are_faded_after_the_online_ones(admin_client: Client, broker: Any) -> None:
    info = {"hostname": "taskq@old", "pid": 7, "pool": "prefork", "concurrency": 4, "queues": ["a"]}
    remember_worker(broker, "taskq@old:7:x", {**info, "name": "taskq@old:7:x", "started": 1}, 600)
    remember_worker(broker, "taskq@new:8:y", {**info, "name": "taskq@new:8:y", "pid": 8}, 0)
    response = admin_client.get(WORKERS)
    rows = response.context["workers"]
    assert [r["worker"].online for r in rows] == [True, False]
    page = text(response)
    assert 'class="taskq-worker taskq-offline"' in page
    assert "1 worker online, 2 remembered." in page


def test_a_malformed_worker_record_does_not_break_the_page(
    admin_client: Client, broker: Any
) -> None:
    remember_worker(broker, "taskq@junk:1:z", b"\xff{not json", 0)
    remember_worker(broker, "taskq@odd:2:z", {"pid": "not a number", "queues": ["a"]}, 0)
    response = admin_client.get(WORKERS)
    assert response.status_code == 200
    assert len(response.context["workers"]) == 2


def test_a_worker_record_with_queues_not_a_list_is_listed(
    admin_client: Client, broker: Any
) -> None:
    remember_worker(broker, "taskq@odd:2:z", {"pid": 2, "queues": 5}, 0)
    response = admin_client.get(WORKERS)
    assert response.status_code == 200
    assert len(response.context["workers"]) == 1


def test_shutdown_asks_for_confirmation_first(admin_client: Client, start_worker: Any) -> None:
    worker = start_worker("-P", "threads", "-c", "1", "-Q", "shop", "-n", "web1")
    name = admin_client.get(WORKERS).context["workers"][0]["worker"].name
    page = admin_client.get(WORKERS)
    assert 'value="shutdown"' in text(page)
    assert 'value="pool_grow"' not in text(page)  # a threads pool is not resized
    confirm = admin_client.post(f"{WORKERS}act/", {"op": "shutdown", "worker": name})
    assert confirm.status_code == 200
    assert "warm shutdown" in text(confirm) and 'id="taskq-confirm"' in text(confirm)
    assert worker.process.poll() is None
    response = admin_client.post(
        f"{WORKERS}act/", {"op": "shutdown", "worker": name, "confirmed": "yes"}, follow=True
    )
    assert "Web1: shutting down" in text(response)
    assert worker.wait(20) == 0


def test_a_worker_refusal_is_shown(admin_client: Client, start_worker: Any) -> None:
    start_worker("-P", "threads", "-c", "1", "-Q", "shop", "-n", "web1")
    name = admin_client.get(WORKERS).context["workers"][0]["worker"].name
    response = admin_client.post(f"{WORKERS}act/", {"op": "pool_grow", "worker": name}, follow=True)
    assert "Web1 refused:" in text(response)


@override_settings(TASKQ_CONTROL_TIMEOUT=0.3)
def test_a_worker_that_does_not_reply_is_named(admin_client: Client) -> None:
    response = admin_client.post(
        f"{WORKERS}act/", {"op": "pool_shrink", "worker": "taskq@nowhere"}, follow=True
    )
    assert "No reply from taskq@nowhere within 0.3 s" in text(response)


def test_a_worker_operation_must_be_known(admin_client: Client) -> None:
    response = admin_client.post(f"{WORKERS}act/", {"op": "reboot", "worker": "w"}, follow=True)
    assert "Choose a worker and an operation." in text(response)


# -- dashboard ---------------------------------------------------------------------------------


def test_dashboard_ranks_slowest_and_most_failing(
    admin_client: Client, redis_data: dict[str, Any]
) -> None:
    response = admin_client.get(DASHBOARD)
    assert response.status_code == 200
    slowest = response.context["slowest"]
    assert [r.task for r in slowest] == [
        "tests.testapp.tasks.sleep_then",
        "tests.testapp.tasks.fail",
        "tests.testapp.tasks.add",
    ]
    assert slowest[0].mean == pytest.approx(4.0) and slowest[0].runs == 2
    failing = response.context["failing"]
    assert [(r.task, r.failed, r.rejected) for r in failing] == [("tests.testapp.tasks.fail", 3, 1)]
    assert response.context["hour"]["succeeded"] == 8
    assert response.context["totals"]["ready"] == 4
    page = text(response)
    assert page.count('<svg class="taskq-chart') == 2 and "<title>" in page
    assert "4.0 s" in page and "100 %" in page


def test_dashboard_json(admin_client: Client, redis_data: dict[str, Any]) -> None:
    data = json.loads(admin_client.get(f"{DASHBOARD}?format=json").content)
    assert len(data["data"]["minutes"]) == 60
    assert sum(data["data"]["succeeded"]) == 8 and sum(data["data"]["failures"]) == 4
    assert data["data"]["succeeded"][-1] == 8  # written this minute
    assert data["html"].count('<svg class="taskq-chart') == 2


def test_dashboard_with_nothing_yet(admin_client: Client) -> None:
    page = text(admin_client.get(DASHBOARD))
    assert "No task has run yet." in page and "No task has failed." in page


# -- Redis holding the unexpected, or gone -------------------------------------------------------


def test_a_key_of_the_wrong_type_is_a_message_not_a_500(
    admin_client: Client, broker: Any, caplog: Any
) -> None:
    broker.sadd(keys.queues(), "weird")
    broker.set(keys.dead("weird"), "a string where a stream should be")
    broker.set(keys.metrics("weird"), "not a hash")
    for url in (QUEUES, DEAD, DASHBOARD, f"{QUEUES}messages/?queue=weird"):
        response = admin_client.get(url)
        assert response.status_code in (200, 503), url
        assert "Traceback" not in text(response)
        if response.status_code == 503:
            assert "Redis answered with an error" in text(response), url
    # What a reader could not handle is a bug to fix: its traceback is in the log.
    logged = [r for r in caplog.records if r.name == "django_taskq.admin"]
    assert logged and all(r.exc_info for r in logged)


@pytest.fixture
def redis_down() -> Any:
    url = f"redis://app:s3cret@127.0.0.1:{free_port()}/0"
    with override_settings(TASKQ_BROKER_URL=url):
        yield url.replace(":s3cret@", ":***@")


@pytest.mark.parametrize("url", PAGES)
def test_redis_down_names_the_broker(admin_client: Client, redis_down: str, url: str) -> None:
    response = admin_client.get(url)
    assert response.status_code in (200, 503)
    page = text(response)
    assert "taskq-redis-error" in page
    assert f"Redis at {redis_down} is unreachable" in page
    assert "TASKQ_BROKER_URL" in page and "s3cret" not in page


def test_redis_down_in_json_and_actions(admin_client: Client, redis_down: str) -> None:
    response = admin_client.get(f"{WORKERS}?format=json")
    assert response.status_code == 503
    assert f"Redis at {redis_down} is unreachable" in json.loads(response.content)["error"]
    for url, data in ACTIONS:
        response = admin_client.post(url, data, follow=True)
        assert response.status_code in (200, 503)
        assert f"Redis at {redis_down} is unreachable" in text(response)


def test_text_utf8_cannot_encode_is_shown_not_a_500(admin_client: Client, broker: Any) -> None:
    """A lone surrogate in JSON read from Redis ("\\ud800") made the page unencodable: a 500."""
    odd = "\\ud800"
    body = f'{{"id": "x{odd}", "task": "t{odd}", "args": ["a{odd}"], "kwargs": {{"k{odd}": 1}}}}'
    broker.sadd(keys.queues(), "odd")
    broker.xadd(keys.stream("odd", 5), {"i": b"\xed\xa0\x80", "b": body})
    broker.zadd(keys.delayed("odd"), {"5\nx\n" + body: 1})
    broker.xadd(keys.dead("odd"), {"i": "x", "b": body, "reason": "why \x00", "q": "odd"})
    info = f'{{"pid": 2, "queues": ["q{odd}"], "running": [{{"id": "r{odd}", "task": "t{odd}"}}]}}'
    remember_worker(broker, "taskq@odd:2:z", info.encode(), 0)
    minute = int(time.time() // 60)
    broker.hset(keys.throughput("odd", minute), mapping={b"\xff\xfe": 1, b"succeeded": b"x"})
    for url in [*PAGES, f"{QUEUES}messages/?queue=odd", f"{DEAD}?queue=odd"]:
        for suffix in ("", "&format=json" if "?" in url else "?format=json"):
            response = admin_client.get(url + suffix)
            assert response.status_code == 200, url + suffix
    page = text(admin_client.get(f"{QUEUES}messages/?queue=odd"))
    assert "t\ufffd" in page
