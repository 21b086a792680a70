"""The console's pages as the person on call reads them (no browser): the list with its filters and pages,
the incident page with its history, the live version and fragment, the report download, the buttons'
answers (a flash message after a plain post, JSON for the page's script) and the banner."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from service import keys
from service.records import switches, windows
from tests.console.console_helpers import (
    APPROVER,
    console_client,
    csrf_of,
    detail,
    fire,
    incidents,
    page,
    sign_in,
)


@pytest.fixture
async def client(aiohttp_client: Any, make_settings: Any) -> Any:
    client = await console_client(aiohttp_client, make_settings)
    await sign_in(client, APPROVER)
    return client


def rows(html: str) -> list[str]:
    """The target column of the list's rows."""
    return re.findall(r'<a href="/ui/incidents/\w+">Deployment/default/([a-z-]+)</a>', html)


async def test_the_list_filters_and_pages_with_the_api_cursor(client: Any) -> None:
    for service in ("alpha", "bravo", "charlie"):
        await fire(client, service=service)
        await incidents(client, {"alpha": 1, "bravo": 2, "charlie": 3}[service])
    first = await page(client, "/ui/?limit=2")
    assert rows(first) == ["charlie", "bravo"], "newest first"
    assert "MTTR clock" in first and "escalated" in first and "L1" in first
    [next_page] = re.findall(r'<a href="([^"]+)" id="next-page">', first)
    second = await page(client, next_page.replace("&amp;", "&"))
    assert rows(second) == ["alpha"] and 'id="next-page"' not in second and "first page" in second
    assert rows(await page(client, "/ui/?state=resolved")) == []
    assert "No incidents match these filters" in await page(client, "/ui/?state=resolved")
    assert len(rows(await page(client, "/ui/?state=escalated&rule=high-error-rate"))) == 3
    assert rows(await page(client, "/ui/?over=1")) == [], "a minute into a 5-minute target"
    assert len(rows(await page(client, "/ui/?state=bogus&cursor=%%%"))) == 3, "bad filters filter nothing"


async def test_the_incident_page_shows_the_history_of_its_rule_and_target(client: Any) -> None:
    started = time.time() - 400
    await fire(client, service="checkout", started=started)
    [previous] = await incidents(client, 1)
    await fire(client, service="checkout", started=started, resolved=True)
    await incidents(client, 1, state="resolved")
    await fire(client, service="checkout")  # a new episode: a new incident of the same rule and target
    await fire(client, service="other")
    current = next(
        i
        for i in await incidents(client, 3)
        if i["state"] != "resolved" and i["target"]["name"] == "checkout"
    )
    html = await page(client, f"/ui/incidents/{current['id']}")
    history = html.split('id="history"', 1)[1].split("</section>", 1)[0]
    assert f'href="/ui/incidents/{previous["id"]}"' in history
    assert "the alert resolved on its own" in history and "resolved" in history
    assert re.search(r'<span class="over">6m \d\ds</span>', history), "over its 5-minute target"
    assert history.count("<tr>") == 1 + 1, "one earlier incident (and the header): not the other target's"
    for section in (
        "summary",
        "actions",
        "findings",
        "alerts",
        "checklist",
        "timeline",
        "notifications",
        "report",
    ):
        assert f'id="{section}"' in html or f'class="{section}"' in html, section
    assert "kube.rollout_undo" in html and 'class="go approve"' in html
    assert "Immediate (0-1 hour)" in html and "Service fully restored" in html


async def test_the_version_changes_when_the_incident_does_and_the_fragment_shows_it(client: Any) -> None:
    await fire(client, service="checkout")
    [incident] = await incidents(client, 1)
    base = f"/ui/incidents/{incident['id']}"
    version = (await (await client.get(f"{base}/version")).json())["version"]
    assert (await (await client.get(f"{base}/version")).json())["version"] == version, "stable while idle"
    listed = (await (await client.get("/ui/version")).json())["version"]
    html = await page(client, base)
    answer = await client.post(
        f"{base}/ack", data={"csrf": csrf_of(html)}, headers={"Accept": "application/json"}
    )
    assert answer.status == 200
    assert await answer.json() == {"ok": True, "status": 200, "message": "acknowledged by alice"}
    assert (await (await client.get(f"{base}/version")).json())["version"] != version
    assert (await (await client.get("/ui/version")).json())["version"] != listed
    fragment = await page(client, f"{base}/fragment")
    assert "acknowledged by alice" in fragment and "<html" not in fragment and 'id="ack"' not in fragment
    assert f'name="back" value="{base}"' in fragment, "buttons in a fragment go back to the page"
    again = await client.post(
        f"{base}/ack", data={"csrf": csrf_of(html)}, headers={"Accept": "application/json"}
    )
    assert again.status == 409 and "already acknowledged by alice" in (await again.json())["message"]


async def test_a_plain_form_post_goes_back_with_a_flash_message_shown_once(client: Any) -> None:
    await fire(client, service="checkout")
    [incident] = await incidents(client, 1)
    base = f"/ui/incidents/{incident['id']}"
    token = csrf_of(await page(client, base))
    ticked = await client.post(
        f"{base}/checklist/root-cause-identified",
        data={"csrf": token, "back": "https://evil.example/"},
        allow_redirects=False,
    )
    assert (ticked.status, ticked.headers["Location"]) == (303, base), "never back to another site"
    shown = await page(client, base)
    flash = shown.split('id="flash"', 1)[1].split("</div>", 1)[0]
    assert "'Root cause identified' ticked by alice" in flash.replace("&#39;", "'") and "ok" in flash
    assert re.search(r"Root cause identified <span class=\"who\">— alice, \d{4}-", shown)
    assert "ticked by alice" not in (await page(client, base)).split('id="flash"', 1)[1].split("</div>", 1)[0]
    timeline = [e["kind"] for e in (await detail(client, incident["id"]))["timeline"]]
    assert "checklist.ticked" in timeline


async def test_the_report_downloads_as_markdown(client: Any) -> None:
    await fire(client, service="checkout")
    [incident] = await incidents(client, 1)
    response = await client.get(f"/ui/incidents/{incident['id']}/report.md")
    assert response.status == 200 and response.content_type == "text/markdown"
    assert response.headers["Content-Disposition"] == f'attachment; filename="incident-{incident["id"]}.md"'
    text = await response.text()
    assert "high-error-rate" in text and "checklist" in text.lower()


async def test_the_banner_pauses_and_resumes_and_lists_maintenance_windows(client: Any) -> None:
    store = client.server.app[keys.STORE]
    html = await page(client, "/ui/")
    assert "Automation is on." in html and "Pause automation" in html
    paused = await client.post(
        "/ui/pause", data={"csrf": csrf_of(html), "back": "/ui/?state=open"}, allow_redirects=False
    )
    assert (paused.status, paused.headers["Location"]) == (303, "/ui/?state=open")
    assert await switches.paused(store)
    html = await page(client, "/ui/?state=open")
    assert (
        "Automation is paused" in html
        and "Resume automation" in html
        and "automation paused by alice" in html
    )
    await windows.open_window(
        store,
        kind="namespace",
        value="shop",
        until=time.time() + 3600,
        by="bob",
        reason="DB <upgrade>",
        now=time.time(),
    )
    html = await page(client, "/ui/")
    assert "Maintenance window on <code>namespace:shop</code>" in html and "DB &lt;upgrade&gt;" in html
    await client.post("/ui/resume", data={"csrf": csrf_of(html)}, allow_redirects=False)
    assert not await switches.paused(store)
