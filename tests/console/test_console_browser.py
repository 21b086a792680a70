"""The console in a real headless Chromium (Debian's ``chromium`` and ``chromium-driver``, through selenium):
the service on a real port with the Kubernetes stand-in; an approver approves a proposed rollback, ticks a
checklist item and acknowledges, all without the page reloading; a read-only session sees no button; a label
``<script>alert(1)</script>`` is shown as text and opens no dialog. Saves ``docs/console.png``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait

from service.app import create_app
from tests.conftest import ROOT, TOKEN, eventually, load_fixture
from tests.support import kube_clients
from tests.support.kube_standin import KubeStandin

NS = "default"
APPROVER = "alice-approves"
HOSTILE = "<script>alert(1)</script>"
SCREENSHOT = ROOT / "docs" / "console.png"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    """The stand-in with Deployment ``checkout`` at revision 2 (a new image): there is a release to undo."""
    async with KubeStandin(rollout_delay=0.2) as kube:
        kube.add_deployment(NS, "checkout", replicas=2, image="shop/checkout:1")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
        await kube_clients.release(kubeconfig, NS, "checkout", "shop/checkout:2")
        await kube.settle()
        yield kube, kubeconfig


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


async def fire(session: aiohttp.ClientSession, url: str, fingerprint: str, **labels: str) -> None:
    payload = load_fixture("am-0.25-firing.json")
    alert = payload["alerts"][0]
    alert["labels"] = {"alertname": "HighErrorRate", "namespace": NS, "severity": "critical", **labels}
    alert["fingerprint"] = fingerprint
    alert["startsAt"] = datetime.fromtimestamp(time.time() - 100, UTC).isoformat().replace("+00:00", "Z")
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with session.post(f"{url}/v1/alerts", data=json.dumps(payload), headers=headers) as response:
        assert response.status == 200


async def escalated(session: aiohttp.ClientSession, url: str, count: int) -> dict[str, str]:
    """service name → incident id, once ``count`` incidents are escalated with their proposal."""

    async def check() -> dict[str, str]:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with session.get(f"{url}/v1/incidents?state=escalated", headers=headers) as response:
            found = (await response.json())["incidents"]
        return {i["target"]["name"]: i["id"] for i in found} if len(found) == count else {}

    ids: dict[str, str] = await eventually(check, timeout=30, interval=0.1)
    return ids


def sign_in(driver: WebDriver, url: str, token: str) -> None:
    driver.get(f"{url}/ui/login")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(driver, 10).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "table.incidents"),
        "not signed in: " + driver.page_source[:3000],
    )


def wait_text(driver: WebDriver, css: str, text: str, timeout: float = 15) -> None:
    """Wait until an element matching `css` shows `text`.

    The page re-renders its rows as it polls, so an element found may be replaced before its text is
    read; that is a reason to look again, not a failure.
    """
    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, css)),
        f"{text!r} never appeared in {css}",
    )


def click(driver: WebDriver, css: str, timeout: float = 10) -> None:
    """Click the element matching `css`, finding it again if polling replaced it first."""

    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(
        clicked, f"could not click {css}"
    )


def list_marked(driver: WebDriver, url: str) -> None:
    sign_in(driver, url, APPROVER)
    driver.execute_script("window.sameDocument = 'list'")


def list_grew(driver: WebDriver) -> None:
    """A new incident appears on the list without a reload."""
    wait_text(driver, "table.incidents", "Deployment/default/payments")
    assert driver.execute_script("return window.sameDocument") == "list", "the list reloaded"


def approve_tick_ack(driver: WebDriver, url: str, incident_id: str) -> None:
    """The approver's walk through the incident page; the page must never reload."""
    click(driver, f"a[href='/ui/incidents/{incident_id}']")
    wait_text(driver, "tr.action", "awaiting_approval")
    driver.execute_script("window.sameDocument = 'yes'")
    loaded_at = driver.execute_script("return window.remediatorConsole.loadedAt")

    click(driver, "button.approve")
    wait_text(driver, "#flash", "approved by alice")
    wait_text(driver, "tr.action", "succeeded")  # the action ran; the page learnt it by polling
    wait_text(driver, "tr.action", "from revision 2 to 1")
    wait_text(driver, "#timeline", "kube.rollout_undo approved by alice")

    click(driver, "button.tick[data-item='service-fully-restored']")
    wait_text(driver, "#checklist li.ticked", "Service fully restored — alice")
    wait_text(driver, "#timeline", "checklist")

    click(driver, "#ack")
    wait_text(driver, "#acked", "acknowledged by alice")
    assert driver.find_elements(By.ID, "ack") == [], "acknowledged: the button is gone"

    assert driver.execute_script("return window.sameDocument") == "yes", "the page reloaded"
    assert driver.execute_script("return window.remediatorConsole.loadedAt") == loaded_at
    assert driver.execute_script("return window.remediatorConsole.swaps") >= 3
    driver.execute_script("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    assert driver.save_screenshot(str(SCREENSHOT))


def hostile_label_is_text(driver: WebDriver, url: str, incident_id: str) -> None:
    driver.get(f"{url}/ui/incidents/{incident_id}")
    wait_text(driver, "td.label-value", HOSTILE)
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # reading it is the check: no dialog opened
    assert driver.find_elements(By.XPATH, "//main//script") == []


def reader_sees_no_buttons(driver: WebDriver, url: str, incident_id: str) -> None:
    driver.find_element(By.CSS_SELECTOR, "header form button").click()  # sign out
    WebDriverWait(driver, 10).until(lambda d: d.current_url.endswith("/ui/login"))
    sign_in(driver, url, TOKEN)
    assert "read-only" in driver.find_element(By.CSS_SELECTOR, "header .who").text
    assert driver.find_elements(By.ID, "switch") == []
    driver.get(f"{url}/ui/incidents/{incident_id}")
    wait_text(driver, "#timeline", "approved by alice")
    buttons = driver.find_elements(By.CSS_SELECTOR, "main button")
    assert buttons == [], [b.text for b in buttons]


async def test_an_approver_acts_from_the_console_and_a_reader_only_looks(
    make_settings: Any, cluster: tuple[KubeStandin, Path], browser: WebDriver
) -> None:
    kube, kubeconfig = cluster
    settings = make_settings(
        kubeconfig=kubeconfig,
        approver_tokens=f"alice={APPROVER}",
        session_secret="console-browser-test-secret",
        verify_interval_s=0.3,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("")).rstrip("/")
    try:
        async with aiohttp.ClientSession() as session:
            await fire(session, url, "checkout-errors", service="checkout")
            await fire(session, url, "hostile", service="billing", team=HOSTILE)
            ids = await escalated(session, url, 2)
            await asyncio.to_thread(list_marked, browser, url)
            await fire(session, url, "payments-errors", service="payments")
            await asyncio.to_thread(list_grew, browser)
        kube.clear_requests()
        await asyncio.to_thread(approve_tick_ack, browser, url, ids["checkout"])
        [undo] = kube.writes()
        assert undo.method == "PATCH" and undo.body[0]["path"] == "/spec/template"
        assert "shop/checkout:1" in json.dumps(undo.body)
        await asyncio.to_thread(hostile_label_is_text, browser, url, ids["billing"])
        await asyncio.to_thread(reader_sees_no_buttons, browser, url, ids["checkout"])
    finally:
        await server.close()
    assert SCREENSHOT.stat().st_size > 10_000
