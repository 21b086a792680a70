"""The console's "Customer communication" section: the drafts of a customer-impacting incident with a
Publish button each; a click publishes the status-page update once, a second click says who did it first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.app import create_app
from tests.comms import comms_support as s
from tests.console.console_helpers import csrf_of, page, sign_in
from tests.support.saas import Statuspage, serving


async def test_the_console_publishes_a_draft_once(
    aiohttp_client: Any, make_settings: Any, tmp_path: Path
) -> None:
    key = tmp_path / "key"
    key.write_text("sp-test-key")
    page_standin = Statuspage()
    async with serving(page_standin.app(), "/") as url:
        settings = make_settings(
            approver_tokens="alice=alice-token",
            session_secret="comms-console-session-secret",
            statuspage_url=url,
            statuspage_page_id="page123",
            statuspage_api_key_file=key,
        )
        client = await aiohttp_client(create_app(settings))
        incident = await s.escalated(client)
        await s.timers(client).run_once(now=await s.started_at(client, incident["id"]) + 30)
        await sign_in(client, "alice-token")
        path = f"/ui/incidents/{incident['id']}"
        html = await page(client, path)
        assert 'id="comms"' in html and "Customer communication" in html
        assert html.count(">Publish</button>") == 2  # status page and email, Investigating
        assert "We are investigating an outage affecting some of our services" in html
        publish = f"{path}/comms/statuspage/investigating/publish"
        form = {"csrf": csrf_of(html), "back": path}
        clicked = await client.post(publish, data=form, headers={"Accept": "application/json"})
        assert clicked.status == 200 and (await clicked.json())["ok"] is True
        again = await client.post(publish, data=form, headers={"Accept": "application/json"})
        assert again.status == 409
        assert "already published by alice at" in (await again.json())["message"]
        assert [m for m, _i, _f in page_standin.calls] == ["POST"]
        html = await page(client, path)
        assert html.count(">Publish</button>") == 1 and "published by alice" in html
        forged = await client.post(f"{path}/comms/email/investigating/publish", data={"csrf": "0" * 64})
        assert forged.status == 403
