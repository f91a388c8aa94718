"""A real browser: log in to the admin, start a rebuild from the projections page, watch it finish.

Headless Chromium and chromedriver come from Debian's packages (``apt-get install chromium
chromium-driver``); without them the test is skipped.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from cqrs_core.models import ProjectionState
from cqrs_core.store import head_position

from .conftest import BALANCES, history

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), Path("/usr/bin/chromedriver")
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(CHROMIUM is None or not CHROMEDRIVER.exists(),
                       reason="needs chromium and /usr/bin/chromedriver (apt-get install chromium chromium-driver)"),
]


@pytest.fixture
def browser() -> Iterator[object]:
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="ledgerline-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def cell(driver, row: object, name: str) -> str:
    return row.find_element("css selector", f"td.field-{name}").text.strip()


def test_rebuild_from_the_projections_page_in_a_real_browser(live_server, browser) -> None:
    from selenium.webdriver.support.ui import Select, WebDriverWait

    get_user_model().objects.create_superuser("olivia", "olivia@example.com", "pw-olivia")
    history(accounts=3, deposits=5)
    generation = ProjectionState.objects.get(name=BALANCES).generation

    browser.get(f"{live_server.url}/admin/login/?next=/admin/cqrs_core/projectionstate/")
    browser.find_element("name", "username").send_keys("olivia")
    browser.find_element("name", "password").send_keys("pw-olivia")
    browser.find_element("css selector", "input[type=submit]").click()
    # click() returns before the next page has loaded: wait for what that page shows.
    wait = WebDriverWait(browser, 30)
    wait.until(lambda driver: driver.find_elements("css selector", f"input[name=_selected_action][value='{BALANCES}']"))

    browser.find_element("css selector", f"input[name=_selected_action][value='{BALANCES}']").click()
    Select(browser.find_element("name", "action")).select_by_value("rebuild_projections")
    browser.find_element("css selector", "button[name=index]").click()
    wait.until(lambda driver: "Rebuild of bus_app.balances started in a background thread" in driver.page_source)

    head, deadline = str(head_position()), time.monotonic() + 60
    while True:
        row = browser.find_element("xpath", f"//tr[.//input[@value='{BALANCES}']]")
        status, checkpoint = cell(browser, row, "status_display"), cell(browser, row, "checkpoint")
        rebuilt = ProjectionState.objects.get(name=BALANCES).generation > generation
        if rebuilt and status == "running" and checkpoint == head:
            break
        assert time.monotonic() < deadline, f"rebuild not finished within 60 s: {status} at {checkpoint} of {head}"
        time.sleep(0.2)
        browser.refresh()
    assert cell(browser, row, "head") == head and cell(browser, row, "lag_events") == "0"
