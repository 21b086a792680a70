"""Email updates (issue 16, Done-when 3): a local SMTP server (aiosmtpd) receives exactly one message per
published step, with the draft's text; a second click sends nothing."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from service.app import create_app
from tests.comms import comms_support as s


class Inbox:
    """aiosmtpd handler keeping every message it accepted."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK queued"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


async def test_one_message_per_published_step_with_the_drafts_text(
    aiohttp_client: Any, make_settings: Any, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    settings = make_settings(
        approver_tokens="alice=alice-token",
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        smtp_from="status@example.com",
        smtp_to="customers@example.com,cto@example.com",
    )
    client = await aiohttp_client(create_app(settings))
    incident = await s.escalated(client)
    t0 = await s.started_at(client, incident["id"])
    await s.timers(client).run_once(now=t0 + 30)
    sent = await s.publish(client, incident["id"], "email", "investigating")
    assert sent.status == 200, await sent.text()
    draft = (await sent.json())["text"]
    again = await s.publish(client, incident["id"], "email", "investigating")
    assert again.status == 409 and "already published by alice" in (await again.json())["error"]
    [(rcpt, mail)] = inbox.messages
    assert rcpt == ["customers@example.com", "cto@example.com"]
    title, _sep, body = draft.partition("\n\n")
    assert mail["Subject"] == title and mail["From"] == "status@example.com"
    assert mail.get_payload(decode=True).decode().replace("\r\n", "\n").strip() == body.strip()
    assert "We are investigating an outage" in body
    report = await (await client.get(f"/v1/incidents/{incident['id']}/report", headers=s.AUTH)).text()
    assert "Stakeholders notified" in report
    await s.resolve(client, incident["id"])
    await s.timers(client).run_once(now=t0 + 120)
    assert (await s.publish(client, incident["id"], "email", "resolved")).status == 200
    assert len(inbox.messages) == 2
    assert "has been resolved" in inbox.messages[1][1].get_payload(decode=True).decode()


async def test_an_unreachable_smtp_server_keeps_the_draft(aiohttp_client: Any, make_settings: Any) -> None:
    settings = make_settings(
        approver_tokens="alice=alice-token",
        smtp_host="127.0.0.1",
        smtp_port=free_port(),
        smtp_starttls=False,
        smtp_to="customers@example.com",
    )
    client = await aiohttp_client(create_app(settings))
    incident = await s.escalated(client)
    await s.timers(client).run_once(now=await s.started_at(client, incident["id"]) + 30)
    failed = await s.publish(client, incident["id"], "email", "investigating")
    assert failed.status == 502 and "SMTP server unreachable" in (await failed.json())["error"]
    timeline = (await s.detail(client, incident["id"]))["timeline"]
    assert any(e["kind"] == "comms.failed" for e in timeline)
    assert not any(e["kind"] == "comms.published" for e in timeline)
