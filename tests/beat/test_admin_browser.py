"""A real browser (headless Chromium) logs in to the admin and reads the next run times.

Skips with the reason when Chromium, chromedriver or selenium is missing; CI
installs them (Debian: ``apt-get install chromium chromium-driver``). The
screenshot is saved to TASKQ_TEST_SCREENSHOT_DIR (default: pytest's tmp dir).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from django_taskq.models import CrontabSchedule, PeriodicTask
from tests.browser import CHROMEDRIVER, CHROMIUM, MISSING, chromium

try:
    from selenium import webdriver
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait
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


@pytest.fixture
def browser():
    yield from chromium("1280,2200")


def test_admin_shows_next_run_times_in_a_browser(live_server, browser, django_user_model, tmp_path):
    django_user_model.objects.create_superuser("admin", "admin@example.com", "secret-pass")
    cron = CrontabSchedule.objects.create(minute="30", hour="2", timezone="America/New_York")
    task = PeriodicTask.objects.create(
        name="nightly-report", task="tests.testapp.tasks.add", crontab=cron, args=[1, 2]
    )
    wait = WebDriverWait(browser, 30, ignored_exceptions=(StaleElementReferenceException,))
    browser.get(f"{live_server.url}/admin/login/")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("secret-pass")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "user-tools")))

    browser.get(f"{live_server.url}/admin/django_taskq/periodictask/{task.pk}/change/")
    runs = wait.until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "ol.taskq-next-runs li time") or False
    )
    texts = [run.text for run in runs]
    assert len(texts) == 5
    assert all(("EST" in t or "EDT" in t) and ("02:30" in t or "03:00" in t) for t in texts), texts
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "At 02:30 (America/New_York)" in page
    # The schedule is chosen with an autocomplete widget, not a dropdown of every row.
    assert browser.find_elements(By.CSS_SELECTOR, ".select2-container")

    target = Path(os.environ.get("TASKQ_TEST_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    shot = target / "admin-periodic-task.png"
    assert browser.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    print(f"\nscreenshot: {shot}")
