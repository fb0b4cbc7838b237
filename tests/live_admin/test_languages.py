"""The admin in each language the app ships (django_taskq/locale): ja, es, pt_BR, zh_Hans.

Every admin page of django_taskq renders in the language set (the model
lists, the periodic task form, the live pages on real Redis data), and in
Chromium a live page's refresh script says what it did in the page's
language. The catalogs themselves are checked in
tests/packaging/test_translations.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.urls import reverse
from django.utils import translation
from django.utils.text import capfirst

pytestmark = pytest.mark.django_db

#: Django's language codes of the shipped catalogs.
LANGUAGES = ["ja", "es", "pt-br", "zh-hans"]
APP_NAME = "Tasks (django_taskq)"


def _in(language: str, text: str) -> str:
    with translation.override(language):
        return str(translation.gettext(text))


def _lists() -> list[tuple[Any, str]]:
    """Every model of the app in the admin, with its list's URL."""
    found = []
    for model in admin.site._registry:
        meta = model._meta
        if meta.app_label == "django_taskq":
            found.append((model, reverse(f"admin:{meta.app_label}_{meta.model_name}_changelist")))
    return found


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_page_of_the_app_speaks_the_language(
    admin_client: Client, redis_data: Any, settings: Any, language: str
) -> None:
    settings.LANGUAGE_CODE = language
    with translation.override(language):
        app_name = str(apps.get_app_config("django_taskq").verbose_name)
    assert app_name != APP_NAME
    index = admin_client.get("/admin/").content.decode()
    assert app_name in index
    lists = _lists()
    assert len(lists) >= 9  # 4 schedules and periodic tasks, history, and the 4 live pages
    for model, url in lists:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        with translation.override(language):
            title = capfirst(str(model._meta.verbose_name_plural))
        assert title in response.content.decode(), (url, title)
    queues = admin_client.get("/admin/django_taskq/queue/").content.decode()
    for word in ("Pause", "Resume", "Updated", "Refresh failed; retrying."):
        translated = _in(language, word)
        assert translated != word, word
        assert translated in queues, word  # the refresh script's words, in data-* attributes
    form = admin_client.get("/admin/django_taskq/periodictask/add/").content.decode()
    tick = "Save although no worker has registered this task"
    assert _in(language, tick) != tick and _in(language, tick) in form


def test_a_live_page_refreshes_in_the_language_of_the_page(
    live_server: Any, browser: Any, superuser: Any, redis_data: Any, settings: Any
) -> None:
    from selenium.webdriver.common.by import By

    from .test_browser import log_in, wait

    settings.LANGUAGE_CODE = "ja"
    log_in(browser, live_server.url, "admin")
    browser.get(f"{live_server.url}/admin/django_taskq/dashboard/")
    updated = _in("ja", "Updated")
    wait(browser, lambda d: updated in d.find_element(By.ID, "taskq-refresh-status").text)
    toggle = browser.find_element(By.ID, "taskq-refresh-toggle")
    assert toggle.text == _in("ja", "Pause")
    toggle.click()
    paused = _in("ja", "Paused.")
    wait(browser, lambda d: d.find_element(By.ID, "taskq-refresh-status").text == paused)
    assert browser.find_element(By.ID, "taskq-refresh-toggle").text == _in("ja", "Resume")
    assert "Updated" not in browser.find_element(By.TAG_NAME, "body").text
