"""Headless Chromium for the tests of the pages we ship (selenium; skipped when missing).

One place for finding the browser and its driver, starting a session and
saying why a test skips, shared by the beat, history and live admin tests.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = (
    shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
)
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = (
    "headless Chromium and chromedriver are not installed "
    "(Debian/Ubuntu: apt-get install chromium chromium-driver)"
)


def chromium(window: str, *extra: str) -> Iterator[Any]:
    """A headless Chromium session of ``window`` size ("W,H"), quit afterwards; skips if missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="pip install selenium")
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip(MISSING)
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={window}",
        *extra,
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot_dir(tmp_path: Path) -> Path:
    """Where page screenshots go: TASKQ_TEST_SCREENSHOT_DIR (docs/monitoring for the docs)."""
    target = Path(os.environ.get("TASKQ_TEST_SCREENSHOT_DIR") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target
