"""Every live admin page and action in a real headless Chromium, on real Redis and a real worker.

A superuser looks at each page and acts (purge, requeue, delete one and
many) through the buttons and confirmation pages; a view-only user sees
the pages without buttons and has POSTs refused; a user without
permission gets 403; a POST without a CSRF token is refused; Redis being
down is a message naming it. Screenshots of each page are saved to
TASKQ_TEST_SCREENSHOT_DIR (``make`` them into docs/monitoring for the docs).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from django_taskq.broker import keys
from django_taskq.broker.publish import publish
from django_taskq.messages import Envelope, new_id
from django_taskq.testing import free_port

from .conftest import (
    PASSWORD,
    dead_letter,
    envelope_body,
    send_messages,
    write_counters,
    write_last_hour,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

QUEUES = "/admin/django_taskq/queue/"
DEAD = "/admin/django_taskq/deadletter/"
WORKERS = "/admin/django_taskq/worker/"
DASHBOARD = "/admin/django_taskq/dashboard/"


def by() -> Any:
    from selenium.webdriver.common.by import By

    return By


def wait(browser: Any, condition: Any, timeout: float = 20) -> Any:
    """Wait for ``condition``; a part of the page replaced by a refresh meanwhile is retried.

    So is a script run while the browser swaps documents (a form just
    submitted): its execution context is gone, and the next try reads the
    new page.
    """
    from selenium.common.exceptions import (
        JavascriptException,
        NoSuchElementException,
        StaleElementReferenceException,
    )
    from selenium.webdriver.support.ui import WebDriverWait

    ignored = (NoSuchElementException, StaleElementReferenceException, JavascriptException)
    return WebDriverWait(browser, timeout, ignored_exceptions=ignored).until(condition)


def pause_refresh(browser: Any) -> None:
    """Press the page's Pause button, so elements read next are not replaced under the test."""
    toggle = browser.find_element(by().ID, "taskq-refresh-toggle")
    toggle.click()
    wait(browser, lambda d: d.find_element(by().ID, "taskq-refresh-toggle").text == "Resume")


def count(browser: Any, queue: str, name: str) -> str:
    selector = f'tr.taskq-queue[data-queue="{queue}"] [data-count="{name}"]'
    return str(browser.find_element(by().CSS_SELECTOR, selector).text)


def log_in(browser: Any, server: str, username: str) -> None:
    browser.get(f"{server}/admin/login/")
    browser.find_element(by().NAME, "username").send_keys(username)
    browser.find_element(by().NAME, "password").send_keys(PASSWORD)
    browser.find_element(by().CSS_SELECTOR, "input[type=submit]").click()
    wait(browser, lambda d: d.find_elements(by().ID, "user-tools"))
    # The admin's navigation sidebar closed, so pages (and screenshots) have the width.
    browser.execute_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")


def shoot(browser: Any, folder: Path, name: str) -> None:
    """A PNG of the whole page (the window is made as tall as the page first)."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1400, min(max(height, 600), 3000))
    path = folder / f"{name}.png"
    assert browser.save_screenshot(str(path))
    assert path.stat().st_size > 10_000
    browser.set_window_size(1400, 1000)


def body_text(browser: Any) -> str:
    """The page's text, read in one script: no element handle that a navigation could
    leave behind (chromedriver then fails with "Node ... does not belong to the
    document", which is not a StaleElementReferenceException; seen once in CI)."""
    return str(browser.execute_script("return document.body ? document.body.innerText : ''"))


def post_from_page(browser: Any, url: str, fields: dict[str, str], token: bool) -> int:
    """POST ``fields`` with fetch() from the page (with the CSRF cookie's token or without)."""
    script = """
        const [url, fields, token, done] = arguments;
        const body = new FormData();
        for (const [k, v] of Object.entries(fields)) body.append(k, v);
        if (token) {
            const m = document.cookie.match(/csrftoken=([^;]+)/);
            body.append("csrfmiddlewaretoken", m ? m[1] : "");
        }
        fetch(url, {method: "POST", body, credentials: "same-origin", redirect: "manual"})
            .then(r => done(r.status), e => done(String(e)));
    """
    return int(browser.execute_async_script(script, url, fields, token))


def poison(queue: str, broker: Any) -> None:
    """Two messages a worker must dead-letter: an unregistered task, a body that is not JSON."""
    publish(Envelope(id=new_id(), task="tests.testapp.tasks.nonexistent", queue=queue, args=[1]))
    broker.xadd(keys.stream(queue, 5), {"i": "raw-1", "b": b"\xff\xfe{not json", "dc": 0})


def wait_for(check: Any, timeout: float = 20) -> None:
    """Wait until ``check()`` holds, reading Redis state (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_superuser_sees_every_page_and_acts(
    live_server: Any,
    browser: Any,
    superuser: Any,
    broker: Any,
    start_worker: Any,
    screenshots: Path,
) -> None:
    from tests.testapp.tasks import sleep_then

    server = live_server.url
    worker = start_worker("-P", "threads", "-c", "2", "-Q", "live", "-n", "web1")
    sleep_then.apply_async((60,), queue="live")  # runs while the pages are looked at
    poison("live", broker)
    wait_for(lambda: broker.xlen(keys.dead("live")) == 2)
    wait_for(lambda: any(p["pending"] for p in broker.xinfo_groups(keys.stream("live", 5))))
    send_messages()
    dead_letter(
        broker,
        "shop",
        envelope_body("tests.testapp.tasks.add", "dead-1", [7, 8]),
        "task tests.testapp.tasks.add failed 3 deliveries",
        task_id="dead-1",
    )
    write_counters(broker)
    write_last_hour(broker)
    log_in(browser, server, "admin")
    By = by()

    # Dashboard: charts, rankings, and the script refreshing it from the JSON view.
    browser.get(f"{server}{DASHBOARD}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.taskq-chart")) == 2
    assert "tests.testapp.tasks.sleep_then" in browser.find_element(By.ID, "taskq-slowest").text
    assert "tests.testapp.tasks.fail" in browser.find_element(By.ID, "taskq-failing").text
    wait(browser, lambda d: "Updated" in d.find_element(By.ID, "taskq-refresh-status").text)
    shoot(browser, screenshots, "dashboard")
    pause_refresh(browser)

    # Queues: numbers per queue and priority, the consumer holding the running task.
    browser.get(f"{server}{QUEUES}")
    # The page refreshes itself: a task sent now shows up without a reload.
    wait(browser, lambda d: count(d, "shop", "ready") == "3")
    from tests.testapp.tasks import add

    add.apply_async((9, 9), queue="shop")
    wait(browser, lambda d: count(d, "shop", "ready") == "4")
    wait(browser, lambda d: count(d, "live", "in_flight") == "1")
    shoot(browser, screenshots, "queues")
    pause_refresh(browser)
    assert count(browser, "live", "in_flight") == "1"
    assert count(browser, "shop", "dead") == "1"
    live_row = browser.find_element(By.CSS_SELECTOR, 'tr.taskq-queue[data-queue="live"]')
    assert f"web1:{worker.pid}:" in live_row.text

    # One queue's messages, then purge it through the confirmation page.
    browser.find_element(By.LINK_TEXT, "shop").click()
    wait(browser, lambda d: d.find_elements(By.ID, "ready"))
    ready = browser.find_element(By.CSS_SELECTOR, 'table[data-kind="ready"]').text
    assert "tests.testapp.tasks.add" in ready and "[1, 2]" in ready and "['parcel']" in ready
    assert (
        "tests.testapp.tasks.add"
        in browser.find_element(By.CSS_SELECTOR, 'table[data-kind="delayed"]').text
    )
    shoot(browser, screenshots, "queue-messages")
    browser.find_element(By.CSS_SELECTOR, "a.taskq-purge").click()
    wait(browser, lambda d: d.find_elements(By.ID, "taskq-confirm-purge"))
    assert "4 ready and 1" in body_text(browser)
    shoot(browser, screenshots, "queue-purge")
    browser.find_element(By.ID, "taskq-confirm-purge").click()
    wait(browser, lambda d: "Purged 5 messages from queue shop." in body_text(d))
    assert sum(broker.xlen(s) for s in keys.queue_streams("shop")) == 0

    # Dead letters: the worker's two with their reasons, then requeue one, delete two.
    browser.get(f"{server}{DEAD}?queue=live")
    table = browser.find_element(By.ID, "taskq-dead-letters").text
    assert "tests.testapp.tasks.nonexistent is not registered on worker web1" in table
    assert "unreadable" in table
    browser.get(f"{server}{DEAD}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#taskq-dead-letters tbody tr")) == 3
    shoot(browser, screenshots, "dead-letters")
    row = browser.find_element(By.XPATH, '//*[@id="taskq-dead-letters"]//tr[contains(., "dead-1")]')
    row.find_element(By.CSS_SELECTOR, "button.taskq-requeue").click()
    wait(browser, lambda d: "Requeued 1 dead letter." in body_text(d))
    assert broker.xlen(keys.dead("shop")) == 0
    assert broker.xlen(keys.stream("shop", 5)) == 1
    for box in browser.find_elements(By.CSS_SELECTOR, "input.action-select"):
        box.click()
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "taskq-bulk-op")).select_by_value("delete")
    browser.find_element(By.ID, "taskq-bulk-go").click()
    wait(browser, lambda d: d.find_elements(By.ID, "taskq-confirm"))
    assert "Delete these 2 dead letters?" in body_text(browser)
    assert broker.xlen(keys.dead("live")) == 2
    shoot(browser, screenshots, "dead-letters-confirm")
    browser.find_element(By.ID, "taskq-confirm").click()
    wait(browser, lambda d: "Deleted 2 dead letters." in body_text(d))
    assert broker.xlen(keys.dead("live")) == 0

    # Workers: the real one online; one that stopped beating ten minutes ago, faded.
    old = "taskq@gone:41:abc"
    info = {
        "name": old,
        "hostname": "taskq@gone",
        "pid": 41,
        "pool": "prefork",
        "concurrency": 4,
        "queues": ["live"],
        "started": time.time() - 7200,
    }
    broker.set(keys.worker_info(old), json.dumps(info))
    broker.zadd(keys.workers(), {old: int((time.time() - 600) * 1000)})
    browser.get(f"{server}{WORKERS}")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#taskq-workers tbody tr")) == 2)
    wait(browser, lambda d: "sleep_then" in d.find_element(By.CSS_SELECTOR, ".taskq-running").text)
    shoot(browser, screenshots, "workers")
    pause_refresh(browser)
    rows = browser.find_elements(By.CSS_SELECTOR, "#taskq-workers tbody tr")
    assert [r.get_attribute("class") for r in rows] == [
        "taskq-worker taskq-online",
        "taskq-worker taskq-offline",
    ]
    assert str(worker.pid) in rows[0].text and "threads" in rows[0].text
    running = rows[0].find_element(By.CSS_SELECTOR, ".taskq-running").text
    assert "tests.testapp.tasks.sleep_then" in running and " s" in running  # with its runtime

    # Processed and failed: the counters of its hostname.
    def field(name: str) -> int:
        return int(rows[0].find_element(By.CSS_SELECTOR, f'[data-field="{name}"]').text)

    assert field("processed") > field("failed") > 0
    assert float(rows[1].value_of_css_property("opacity") or 1) == 1  # the cells fade
    faded = rows[1].find_element(By.TAG_NAME, "td").value_of_css_property("opacity")
    assert float(faded) < 1
    worker.kill()  # not a warm shutdown: it would wait for the minute-long task


def test_superuser_controls_a_prefork_worker(
    live_server: Any, browser: Any, superuser: Any, start_worker: Any, screenshots: Path
) -> None:
    worker = start_worker("-P", "prefork", "-c", "1", "-Q", "live", "-n", "pre1")
    log_in(browser, live_server.url, "admin")
    By = by()
    browser.get(f"{live_server.url}{WORKERS}")
    pause_refresh(browser)
    browser.find_element(By.CSS_SELECTOR, "button.taskq-pool-grow").click()
    wait(browser, lambda d: "Pre1: pool now has 2 processes" in body_text(d))
    wait_for(lambda: len(worker.children()) == 2)
    concurrency = 'tr.taskq-worker [data-field="concurrency"]'
    wait(browser, lambda d: d.find_element(By.CSS_SELECTOR, concurrency).text == "2")
    browser.find_element(By.CSS_SELECTOR, "button.taskq-pool-shrink").click()
    wait(browser, lambda d: "Pre1: pool now has 1 process" in body_text(d))
    browser.find_element(By.CSS_SELECTOR, "button.taskq-shutdown").click()
    wait(browser, lambda d: d.find_elements(By.ID, "taskq-confirm"))
    assert worker.process.poll() is None  # nothing happens before the confirmation
    shoot(browser, screenshots, "worker-shutdown")
    browser.find_element(By.ID, "taskq-confirm").click()
    wait(browser, lambda d: "Pre1: shutting down" in body_text(d))
    assert worker.wait(30) == 0


def test_view_only_user_sees_pages_without_buttons_and_cannot_post(
    live_server: Any, browser: Any, viewer: Any, broker: Any
) -> None:
    send_messages()
    entry = dead_letter(broker, "shop", envelope_body("t.x", "dead-9", []), "a reason")
    log_in(browser, live_server.url, "viewer")
    By = by()
    for url in (QUEUES, DEAD, WORKERS, DASHBOARD, f"{QUEUES}messages/?queue=shop"):
        browser.get(f"{live_server.url}{url}")
        wait(browser, lambda d: d.find_elements(By.ID, "content-main"))
        assert not browser.find_elements(By.CSS_SELECTOR, "a.taskq-purge"), url
        assert not browser.find_elements(By.CSS_SELECTOR, "input.action-select"), url
        assert not browser.find_elements(By.CSS_SELECTOR, "button.taskq-requeue"), url
        assert not browser.find_elements(By.CSS_SELECTOR, "button.taskq-shutdown"), url
    browser.get(f"{live_server.url}{DEAD}")
    assert "a reason" in body_text(browser)
    for url, fields in (
        (f"{QUEUES}purge/", {"queue": "shop"}),
        (f"{DEAD}act/", {"op": "delete", "entry": f"shop {entry}"}),
        (f"{WORKERS}act/", {"op": "shutdown", "worker": "taskq@web1", "confirmed": "yes"}),
    ):
        assert post_from_page(browser, url, fields, token=True) == 403
    browser.get(f"{live_server.url}{QUEUES}purge/?queue=shop")
    assert "403 Forbidden" in body_text(browser)
    assert broker.xlen(keys.stream("shop", 9)) == 2
    assert broker.xlen(keys.dead("shop")) == 1


def test_user_without_permission_gets_403(live_server: Any, browser: Any, nobody: Any) -> None:
    log_in(browser, live_server.url, "nobody")
    for url in (QUEUES, DEAD, WORKERS, DASHBOARD, f"{QUEUES}messages/?queue=shop"):
        browser.get(f"{live_server.url}{url}")
        assert "403 Forbidden" in body_text(browser), url


def test_post_without_csrf_token_is_refused(
    live_server: Any, browser: Any, superuser: Any, broker: Any
) -> None:
    send_messages()
    entry = dead_letter(broker, "shop", envelope_body("t.x", "dead-9", []), "a reason")
    log_in(browser, live_server.url, "admin")
    browser.get(f"{live_server.url}{QUEUES}")
    for url, fields in (
        (f"{QUEUES}purge/", {"queue": "shop"}),
        (f"{DEAD}act/", {"op": "delete", "entry": f"shop {entry}"}),
    ):
        assert post_from_page(browser, url, fields, token=False) == 403
    assert broker.xlen(keys.stream("shop", 9)) == 2 and broker.xlen(keys.dead("shop")) == 1
    # The same request with the token is accepted (a redirect after acting).
    assert (
        post_from_page(browser, f"{DEAD}act/", {"op": "delete", "entry": f"shop {entry}"}, True)
        == 0
    )
    assert broker.xlen(keys.dead("shop")) == 0


def test_redis_down_is_a_message_naming_it(
    live_server: Any, browser: Any, superuser: Any, screenshots: Path
) -> None:
    log_in(browser, live_server.url, "admin")
    url = f"redis://127.0.0.1:{free_port()}/0"
    with override_settings(TASKQ_BROKER_URL=url):
        for page in (QUEUES, DEAD, WORKERS, DASHBOARD):
            browser.get(f"{live_server.url}{page}")
            error = browser.find_element(By_CSS(), ".taskq-redis-error").text
            assert f"Redis at {url} is unreachable" in error, page
            assert "TASKQ_BROKER_URL" in error and "Traceback" not in body_text(browser)
        shoot(browser, screenshots, "redis-down")


def By_CSS() -> Any:
    return by().CSS_SELECTOR


def test_a_msgpack_zlib_dead_letter_is_shown_decoded_and_requeued(
    live_server: Any,
    browser: Any,
    superuser: Any,
    broker: Any,
    start_worker: Any,
    screenshots: Path,
    settings: Any,
) -> None:
    """A message a JSON-only worker refused: shown decoded, requeued, run by a worker that reads it.

    Beside it a compressed body cut short: shown as unreadable with why, and
    its requeue refused with the reason.
    """
    from tests.testapp.tasks import record

    settings.TASKQ_COMPRESSION_MIN_SIZE = 0  # compress however small
    json_only = start_worker("-P", "solo", "-Q", "live", "-n", "web2")
    sent = record.apply_async(
        ("coded-seen", (1, "two")), queue="live", serializer="msgpack", compression="zlib"
    )
    wait_for(lambda: broker.xlen(keys.dead("live")) == 1)
    json_only.stop()
    cut = envelope_body("tests.testapp.tasks.record", "cut-1", ["k", 1], "json", "zlib")[:-6]
    dead_letter(broker, "live", cut, "message body: zlib data is truncated", task_id="cut-1")
    log_in(browser, live_server.url, "admin")
    By = by()

    browser.get(f"{live_server.url}{DEAD}?queue=live")
    row = browser.find_element(By.XPATH, f'//tr[contains(., "{sent.id}")]')
    assert "tests.testapp.tasks.record" in row.text
    assert row.find_element(By.CSS_SELECTOR, ".taskq-content").text == "msgpack+zlib"
    assert "['coded-seen', (1, 'two')]" in row.find_element(By.CSS_SELECTOR, ".taskq-args").text
    assert "add 'msgpack' to TASKQ_ACCEPT_CONTENT" in row.text
    assert not row.find_elements(By.CSS_SELECTOR, ".taskq-unreadable")
    bad = browser.find_element(By.XPATH, '//tr[contains(., "cut-1")]')
    assert bad.find_element(By.CSS_SELECTOR, ".taskq-unreadable").text == "unreadable"
    assert bad.find_element(By.CSS_SELECTOR, ".taskq-content").text == "json+zlib"
    assert "zlib data is truncated" in bad.find_element(By.CSS_SELECTOR, ".taskq-args").text
    shoot(browser, screenshots, "dead-letters-coded")

    bad.find_element(By.CSS_SELECTOR, "button.taskq-requeue").click()
    wait(browser, lambda d: "Not requeued: dead letter" in body_text(d))
    assert "zlib data is truncated. A worker would dead-letter it again" in body_text(browser)
    assert broker.xlen(keys.dead("live")) == 2
    row = browser.find_element(By.XPATH, f'//tr[contains(., "{sent.id}")]')
    row.find_element(By.CSS_SELECTOR, "button.taskq-requeue").click()
    wait(browser, lambda d: "Requeued 1 dead letter." in body_text(d))
    assert broker.xlen(keys.dead("live")) == 1
    start_worker(
        "-P",
        "solo",
        "-Q",
        "live",
        "-n",
        "web3",
        env={"TASKQ_TEST_ACCEPT_CONTENT": "json,msgpack,zlib"},
    )
    # Run by the worker with the arguments as sent: msgpack keeps the tuple a tuple.
    assert broker.blpop(["coded-seen"], timeout=20) == (b"coded-seen", b"(1, 'two')")
