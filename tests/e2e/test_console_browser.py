"""The admin console in headless Chromium, on the real stack: a failure replayed by hand.

A health-check call arrives before the live-call service wrote its checkpoint, so its
step fails for good and is dead-lettered. The checkpoint turns up; an on-call engineer
logs in to ``/admin``, finds the dead letter from the queues page, reads why, replays
it with a reason, and watches the job complete. Debian's ``chromium`` and
``chromium-driver`` drive the pages through Selenium; no script runs in the pages.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from contracts import HealthAnswer
from infra.vendors.checkpoints import write_checkpoint
from tests.e2e.processes import ADMIN, Stack, StackFactory, call_ended_webhook

pytestmark = pytest.mark.e2e

CONVERSATION = "e2e_conv_late_checkpoint"


def _browser_binaries() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    """Headless Chromium (fails under CI when missing; skipped elsewhere)."""
    binaries = _browser_binaries()
    if binaries is None:
        reason = "needs Debian's chromium and chromium-driver (.ci/run installs them)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    chromium, driver_path = binaries
    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def _job_status(stack: Stack, job_id: str) -> str:
    response = httpx.get(
        f"{stack.url}/api/jobs/{job_id}", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=5
    )
    status: str = response.json()["status"]
    return status


def _wait_for(predicate: object, what: str, stack: Stack, timeout_s: float = 30) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} did not happen in {timeout_s} s\n{stack.tail_logs()}")
        time.sleep(0.3)


def _arrive(driver: WebDriver, fragment: str) -> None:
    """Wait for the page a click leads to (a click does not wait for the navigation)."""
    WebDriverWait(driver, 10).until(lambda d: fragment in d.current_url)


def _text(driver: WebDriver, css: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, css).text


def test_an_engineer_replays_a_dead_letter_through_the_console_and_the_job_completes(
    stack_factory: StackFactory, redis_url: str, tmp_path: Path, browser: WebDriver
) -> None:
    stack = stack_factory(redis_url, f"sqlite:///{tmp_path / 'console.db'}")
    body = call_ended_webhook(
        CONVERSATION, "agent_health", [("agent", "How did you sleep?"), ("user", "Badly.")]
    )
    accepted = stack.post(body)
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    _wait_for(lambda: _job_status(stack, job_id) == "failed", "the failure", stack)
    # The live-call service writes the checkpoint late.
    checkpoints = redis.Redis.from_url(redis_url)
    try:
        write_checkpoint(
            checkpoints,
            key_prefix="checkpoint:",
            thread_id=CONVERSATION,
            answers=[HealthAnswer(question="slept_hours", answer="four", value=4, unit="hours")],
        )
    finally:
        checkpoints.close()

    # Not logged in: the console asks for a token, then goes where it was asked to.
    browser.get(f"{stack.url}/admin/queues")
    assert "/admin/login" in browser.current_url
    browser.find_element(By.ID, "token").send_keys(ADMIN)
    browser.find_element(By.ID, "login").click()
    _arrive(browser, "/admin/queues")
    assert _text(browser, "#who") == "bootstrap-admin · admin"
    cookie = browser.get_cookie("switchboard_console")
    assert cookie is not None
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/admin")

    # Queues → the dead letter → why.
    health_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="calls.health"]')
    health_row.find_element(By.LINK_TEXT, "1").click()
    _arrive(browser, "queue=calls.health")
    row = browser.find_element(By.CSS_SELECTOR, "#letters tbody tr")
    assert "no checkpoint state for thread" in row.text
    row.find_element(By.CSS_SELECTOR, "td a code").click()
    _arrive(browser, "/admin/dead-letters/")
    assert "PermanentError" in _text(browser, "#error")
    traceback = browser.find_element(By.ID, "traceback").get_attribute("textContent") or ""
    assert "record_health_check" in traceback

    # Replay, with a reason: back on the job's page, which follows it to completed.
    form = browser.find_element(By.ID, "replay-form")
    form.find_element(By.NAME, "reason").send_keys("INC-9: checkpoint written late")
    form.find_element(By.ID, "replay").click()
    _arrive(browser, f"/admin/jobs/{job_id}")
    assert "replayed" in _text(browser, "#notice")
    _wait_for(lambda: _job_status(stack, job_id) == "completed", "the replay", stack)
    browser.refresh()
    assert _text(browser, "#job-status") == "completed"

    browser.get(f"{stack.url}/admin/audit")
    audit = _text(browser, "table.audit")
    assert "INC-9: checkpoint written late" in audit
    assert "bootstrap-admin" in audit
    browser.get(f"{stack.url}/admin/queues")
    health_row = browser.find_element(By.CSS_SELECTOR, 'tr[data-queue="calls.health"]')
    assert health_row.find_elements(By.LINK_TEXT, "1") == []

    browser.find_element(By.ID, "logout").click()
    _arrive(browser, "/admin/login")
    browser.get(f"{stack.url}/admin/queues")
    assert "/admin/login" in browser.current_url
