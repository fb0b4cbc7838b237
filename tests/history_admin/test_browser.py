"""The task history admin in a real browser (headless Chromium): as each kind of user.

Skips with the reason when Chromium, chromedriver or selenium is missing.
Screenshots of the list and detail pages go to TASKQ_TEST_SCREENSHOT_DIR
(default: pytest's tmp dir); docs/monitoring/ holds the ones the docs show.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from django_taskq import states
from django_taskq.broker import keys
from django_taskq.history.models import TaskRecord
from django_taskq.models import IntervalSchedule, PeriodicTask
from django_taskq.result import AsyncResult
from tests.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium, screenshot_dir
from tests.testapp.tasks import record_slow

from .conftest import PASSWORD, TRACEBACK, failed_record, make_record

try:
    from selenium import webdriver
    from selenium.common.exceptions import JavascriptException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import Select, WebDriverWait
except ImportError:  # pragma: no cover - depends on the environment
    webdriver = None

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        webdriver is None, reason="selenium is not installed (pip install selenium)"
    ),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason=MISSING),
]

LIST_PATH = "/admin/django_taskq/taskrecord/"


@pytest.fixture
def browser() -> Any:
    yield from chromium("1440,1000")


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    return screenshot_dir(tmp_path)


class Admin:
    """A logged-in browser session on the live server."""

    def __init__(self, browser: Any, base: str) -> None:
        self.browser = browser
        self.base = base
        # A condition may read an element of the page a click is leaving: that
        # read fails as stale, and the wait asks again on the new page.
        # A script run while a submitted form swaps the document fails with a
        # JavascriptException (its context is gone): the next try reads the new page.
        self.wait = WebDriverWait(
            browser, 30, ignored_exceptions=(StaleElementReferenceException, JavascriptException)
        )

    def login(self, username: str) -> Admin:
        self.browser.get(f"{self.base}/admin/login/")
        self.browser.find_element(By.NAME, "username").send_keys(username)
        self.browser.find_element(By.NAME, "password").send_keys(PASSWORD)
        self.browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
        self.wait.until(expected_conditions.presence_of_element_located((By.ID, "user-tools")))
        return self

    def open(self, path: str) -> None:
        self.browser.get(self.base + path)
        self.wait.until(expected_conditions.presence_of_element_located((By.ID, "content")))

    def text(self) -> str:
        """The page's text, read in one script: no element handle a navigation could
        leave behind (chromedriver's "Node ... does not belong to the document")."""
        return str(
            self.browser.execute_script("return document.body ? document.body.innerText : ''")
        )

    def rows(self) -> list[str]:
        """The task ids of the list's rows, in order."""
        ids = self.browser.find_elements(By.CSS_SELECTOR, "#result_list code.taskq-id")
        return [str(i.get_attribute("title") or i.text) for i in ids]

    def screenshot(self, path: Path, height: int = 1000) -> None:
        """Save the page without the admin's app sidebar, ``height`` pixels tall."""
        if self.browser.find_elements(By.CSS_SELECTOR, "#nav-sidebar[aria-expanded=true]"):
            self.browser.find_element(By.ID, "toggle-nav-sidebar").click()
        self.browser.set_window_size(1440, height)
        assert self.browser.save_screenshot(str(path))
        self.browser.set_window_size(1440, 1000)
        assert path.stat().st_size > 20_000

    def act(self, action: str, *records: TaskRecord) -> str:
        for record in records:
            self.browser.find_element(
                By.CSS_SELECTOR, f'input.action-select[value="{record.pk}"]'
            ).click()
        Select(self.browser.find_element(By.NAME, "action")).select_by_value(action)
        self.browser.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()
        messages = self.wait.until(
            lambda d: d.find_elements(By.CSS_SELECTOR, "ul.messagelist") or False
        )
        return str(messages[0].text)


def user(django_user_model: Any, name: str, *perms: str, superuser: bool = False) -> Any:
    from django.contrib.auth.models import Permission

    if superuser:
        return django_user_model.objects.create_superuser(name, f"{name}@example.com", PASSWORD)
    account = django_user_model.objects.create_user(name, password=PASSWORD, is_staff=True)
    for perm in perms:
        account.user_permissions.add(
            Permission.objects.get(content_type__app_label="django_taskq", codename=perm)
        )
    return account


def history() -> dict[str, TaskRecord]:
    """A small, realistic history: a chain, a failure with a traceback, a running task."""
    now = timezone.now()

    def ago(seconds: float) -> dt.datetime:
        return now - dt.timedelta(seconds=seconds)

    def ran(sent: float, wait: float = 0.2, runtime: float = 1.0) -> dict[str, Any]:
        """Consistent times of a finished task sent ``sent`` seconds ago."""
        return {
            "sent_at": ago(sent),
            "received_at": ago(sent - wait / 2),
            "started_at": ago(sent - wait),
            "finished_at": ago(sent - wait - runtime),
            "wait_time": wait,
            "runtime": runtime,
        }

    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    PeriodicTask.objects.create(
        name="nightly-invoices", task="billing.tasks.invoice_all", interval=hourly
    )
    rows: dict[str, TaskRecord] = {}
    rows["root"] = make_record(
        task_id="6f1c2a9e-root",
        task_name="billing.tasks.invoice_all",
        periodic_task_name="nightly-invoices",
        **ran(600, runtime=2.41),
        result="['inv-1041', 'inv-1042']",
        worker="taskq@billing-1",
    )
    rows["failed"] = failed_record(
        task="tests.testapp.tasks.fail",
        args=["card declined"],
        task_name="tests.testapp.tasks.fail",
        parent_id=rows["root"].task_id,
        root_id=rows["root"].task_id,
        group_id="grp-invoices",
        **ran(590, wait=0.04, runtime=0.312),
        worker="taskq@billing-2",
        retries=3,
        exception_message="card declined",
        traceback=TRACEBACK.replace("boom", "card declined"),
    )
    rows["sibling"] = make_record(
        task_id="b3f0-sibling",
        task_name="billing.tasks.charge",
        parent_id=rows["root"].task_id,
        root_id=rows["root"].task_id,
        group_id="grp-invoices",
        **ran(589, wait=0.05, runtime=0.87),
        worker="taskq@billing-1",
    )
    rows["running"] = make_record(
        task_id="9a7d-running",
        task_name="reports.tasks.export",
        state="PROGRESS",
        progress={"current": 640, "total": 1000},
        queue="reports",
        worker="taskq@reports-1",
        sent_at=ago(40),
        received_at=ago(39.9),
        started_at=ago(39.8),
        wait_time=0.2,
        finished_at=None,
        runtime=None,
        result="",
    )
    rows["pending"] = make_record(
        task_id="c41e-pending",
        task_name="mail.tasks.send_digest",
        state="PENDING",
        queue="mail",
        priority=9,
        worker="",
        sent_at=ago(5),
        received_at=None,
        started_at=None,
        finished_at=None,
        runtime=None,
        result="",
    )
    rows["dead"] = failed_record(
        task="tests.testapp.tasks.add",
        task_name="tests.testapp.tasks.add",
        dead_lettered=True,
        reason="task not registered on taskq@billing-1",
        **ran(300, runtime=0),
        traceback="",
        exception_type="",
        exception_message="",
    )
    for i in range(12):
        make_record(
            task_name="mail.tasks.send_welcome",
            args=f"['user{i}@example.com']",
            queue="mail",
            worker=f"taskq@mail-{i % 2 + 1}",
            **ran(100 + i * 7, runtime=0.05 + i / 100),
        )
    return rows


def test_list_filters_and_search(live_server, browser, django_user_model, screenshots):
    user(django_user_model, "root", superuser=True)
    rows = history()
    page = Admin(browser, live_server.url).login("root")
    page.open(LIST_PATH)
    assert page.rows()[0] == rows["pending"].task_id  # newest first
    badges = browser.find_elements(By.CSS_SELECTOR, "#result_list .taskq-badge")
    colours = {b.text: b.value_of_css_property("background-color") for b in badges}
    assert colours["SUCCESS"] != colours["FAILURE"] != colours["DEAD-LETTERED"]
    page.screenshot(screenshots / "history-list.png", height=1100)

    # The state filter, in the sidebar.
    browser.find_element(By.LINK_TEXT, "Failed, revoked or dead-lettered").click()
    page.wait.until(lambda d: "state=failures" in d.current_url)
    assert set(page.rows()) == {rows["failed"].task_id, rows["dead"].task_id}
    # Then a queue from the queue filter's index-found choices.
    page.open(LIST_PATH)
    queue_filter = browser.find_element(By.CSS_SELECTOR, "#changelist-filter")
    queue_filter.find_element(By.LINK_TEXT, "reports").click()
    page.wait.until(lambda d: "queue=reports" in d.current_url)
    assert page.rows() == [rows["running"].task_id]
    # The priority filter (0-9), as django-tasks-redis's admin has one.
    page.open(LIST_PATH)
    priority_filter = browser.find_element(
        By.CSS_SELECTOR, '#changelist-filter details[data-filter-title="priority"]'
    )
    priority_filter.find_element(By.LINK_TEXT, "9").click()
    page.wait.until(lambda d: "priority=9" in d.current_url)
    assert page.rows() == [rows["pending"].task_id]

    # Search by an argument, then by an exact id.
    page.open(LIST_PATH)
    search = browser.find_element(By.ID, "searchbar")
    search.send_keys("user3@example.com\n")
    page.wait.until(lambda d: "q=user3" in d.current_url)
    assert len(page.rows()) == 1
    page.open(LIST_PATH + f"?q={rows['sibling'].task_id}")
    assert page.rows() == [rows["sibling"].task_id]


def test_detail_page_links_progress_and_traceback(
    live_server, browser, django_user_model, screenshots
):
    user(django_user_model, "root", superuser=True)
    rows = history()
    page = Admin(browser, live_server.url).login("root")
    page.open(f"{LIST_PATH}{rows['failed'].pk}/change/")
    traceback = browser.find_element(By.CSS_SELECTOR, "pre.taskq-traceback")
    assert traceback.text.splitlines()[-1] == "ValueError: card declined"
    assert traceback.value_of_css_property("white-space") == "pre"
    text = page.text()
    for expected in ("billing.tasks.invoice_all", "billing.tasks.charge", "grp-invoices"):
        assert expected in text
    page.screenshot(screenshots / "history-detail.png", height=2500)

    # The parent link opens the parent; from there, the periodic task that sent it.
    browser.find_element(By.CSS_SELECTOR, ".field-parent_detail a").click()
    page.wait.until(lambda d: f"/{rows['root'].pk}/change/" in d.current_url)
    browser.find_element(By.LINK_TEXT, "nightly-invoices").click()
    page.wait.until(lambda d: "/periodictask/" in d.current_url)
    assert "nightly-invoices" in page.text()

    # A running task's progress bar.
    page.open(f"{LIST_PATH}{rows['running'].pk}/change/")
    bar = browser.find_element(By.CSS_SELECTOR, ".taskq-progress progress")
    assert bar.get_attribute("value") == "640"
    assert "640 / 1000 (64%)" in page.text()
    page.screenshot(screenshots / "history-progress.png", height=700)


def test_actions_as_superuser(live_server, browser, django_user_model, broker, start_plain_worker):
    user(django_user_model, "root", superuser=True)
    rows = history()
    page = Admin(browser, live_server.url).login("root")

    page.open(LIST_PATH)
    message = page.act("retry_tasks", rows["failed"])
    assert message.startswith("Sent 1 task again as a new task:")
    new_id = message.rsplit(" ", 1)[-1]
    # The new id links to its row; the recorder has not written it in this test.
    browser.find_element(By.LINK_TEXT, new_id).click()
    page.wait.until(lambda d: f"task_id={new_id}" in d.current_url)
    assert f"Task {new_id} has no history row yet" in page.text()

    page.open(LIST_PATH)
    message = page.act("revoke_tasks", rows["pending"])
    assert message.startswith("Revoked 1 task:")
    revoked = {m.decode() for m in broker.zrange(keys.revoked("default"), 0, -1)}
    assert rows["pending"].task_id in revoked

    # Terminate a task a real prefork worker is running.
    start_plain_worker("-c", "1")
    result = record_slow.delay("browser-term", "x", 30)
    deadline = time.monotonic() + 15
    while not broker.lrange("browser-term", 0, -1) and time.monotonic() < deadline:
        time.sleep(0.05)
    running = make_record(task_id=result.id, task_name=record_slow.name, state="STARTED")
    page.open(LIST_PATH)
    message = page.act("terminate_tasks", running)
    assert "its worker kills it" in message
    with pytest.raises(Exception, match="revoked"):
        AsyncResult(result.id).get(timeout=15)
    assert AsyncResult(result.id).state == states.REVOKED


def test_view_only_staff_sees_no_actions_and_cannot_change(live_server, browser, django_user_model):
    user(django_user_model, "viewer", "view_taskrecord")
    rows = history()
    page = Admin(browser, live_server.url).login("viewer")
    page.open(LIST_PATH)
    assert page.rows()
    assert not browser.find_elements(By.NAME, "action")
    assert not browser.find_elements(By.CSS_SELECTOR, "input.action-select")
    page.open(f"{LIST_PATH}{rows['failed'].pk}/change/")
    assert "View task" in page.text()
    assert not browser.find_elements(By.NAME, "_save")
    assert not browser.find_elements(By.CSS_SELECTOR, "a.deletelink")


def test_change_user_acts_but_cannot_delete(live_server, browser, django_user_model, broker):
    user(django_user_model, "operator", "view_taskrecord", "change_taskrecord")
    rows = history()
    page = Admin(browser, live_server.url).login("operator")
    page.open(LIST_PATH)
    options = [
        o.get_attribute("value") for o in Select(browser.find_element(By.NAME, "action")).options
    ]
    assert options == ["", "retry_tasks", "revoke_tasks", "terminate_tasks"]
    message = page.act("retry_tasks", rows["dead"])
    assert message.startswith("Sent 1 task again")
    page.open(f"{LIST_PATH}{rows['dead'].pk}/change/")
    assert not browser.find_elements(By.NAME, "_save")


def test_an_action_posted_without_the_csrf_token_is_refused(
    live_server, browser, django_user_model, broker
):
    user(django_user_model, "root", superuser=True)
    rows = history()
    page = Admin(browser, live_server.url).login("root")
    page.open(LIST_PATH)
    browser.execute_script(
        "document.querySelectorAll('input[name=csrfmiddlewaretoken]')"
        ".forEach(function (input) { input.remove(); });"
    )
    browser.find_element(
        By.CSS_SELECTOR, f'input.action-select[value="{rows["failed"].pk}"]'
    ).click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("retry_tasks")
    browser.find_element(By.CSS_SELECTOR, 'button[name="index"]').click()
    page.wait.until(lambda d: "CSRF" in page.text())
    assert "Forbidden (403)" in page.text()
    # Nothing was sent again: no message of the task in its queue.
    assert broker.xrange(keys.stream("default", 5)) == []


def test_periodic_task_list_links_to_its_history(
    live_server, browser, django_user_model, screenshots
):
    user(django_user_model, "root", superuser=True)
    hourly = IntervalSchedule.objects.create(every=1, period=IntervalSchedule.HOURS)
    now = timezone.now()
    PeriodicTask.objects.create(
        name="cleanup-sessions", task="tests.testapp.tasks.add", interval=hourly, args=[1, 2]
    )
    PeriodicTask.objects.create(
        name="sync-crm", task="crm.tasks.sync", interval=hourly, description="misspelt"
    )
    PeriodicTask.objects.create(name="weekly-report", task="reports.tasks.weekly", interval=hourly)
    for hours in range(1, 6):
        make_record(
            task_name="tests.testapp.tasks.add",
            periodic_task_name="cleanup-sessions",
            sent_at=now - dt.timedelta(hours=hours),
        )
    for hours in range(1, 5):
        make_record(
            task_id=f"crm-{hours}",
            task_name="crm.tasks.sync",
            periodic_task_name="sync-crm",
            state="FAILURE",
            dead_lettered=True,
            reason="task crm.tasks.sync is not registered",
            sent_at=now - dt.timedelta(hours=hours),
        )
    page = Admin(browser, live_server.url).login("root")
    page.open("/admin/django_taskq/periodictask/")
    page.screenshot(screenshots / "periodic-tasks.png", height=560)
    row = browser.find_element(By.XPATH, "//tr[.//a[text()='sync-crm']]")
    assert row.find_element(By.CSS_SELECTOR, ".taskq-last-run").text == "DEAD-LETTERED"
    row.find_element(By.CSS_SELECTOR, "a.taskq-failures").click()
    page.wait.until(lambda d: "periodic_task_name=sync-crm" in d.current_url)
    assert sorted(page.rows()) == ["crm-1", "crm-2", "crm-3", "crm-4"]
    assert "By periodic task" in page.text()
    page.open("/admin/django_taskq/periodictask/")
    row = browser.find_element(By.XPATH, "//tr[.//a[text()='sync-crm']]")
    row.find_element(By.CSS_SELECTOR, ".taskq-last-run").click()
    page.wait.until(lambda d: "/taskrecord/" in d.current_url)
    assert "crm-1" in page.text()
