"""Helpers of the on-call CLI tests: a service on a loopback port and ``remediator`` pointed at it."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.conftest import TOKEN, eventually
from tests.test_cli import run_cli

ALICE_TOKEN = "alice-approves"
READER = {"REMEDIATOR_WEBHOOK_TOKEN": TOKEN}
ALICE = {"REMEDIATOR_APPROVER_TOKEN": ALICE_TOKEN}


class Running:
    """A running service and the command line aimed at it (``--url``; tokens from the environment)."""

    def __init__(self, server: TestServer) -> None:
        self.server = server
        self.url = str(server.make_url("/"))

    async def cli(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``remediator ARGS --url URL`` in a child process; only the variables given (no stray token)."""
        clean = {"REMEDIATOR_WEBHOOK_TOKEN": "", "REMEDIATOR_APPROVER_TOKEN": "", **(env or {})}
        return await asyncio.to_thread(run_cli, *args, "--url", self.url, env=clean)

    async def json(self, *args: str, env: dict[str, str] | None = None) -> Any:
        result = await self.cli(*args, "-o", "json", env=env or READER)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    async def post_alert(self, payload: dict[str, Any]) -> None:
        async with aiohttp.ClientSession() as session:
            response = await session.post(
                self.url + "v1/alerts",
                data=json.dumps(payload),
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            assert response.status == 200, await response.text()

    async def settled_incident(self) -> dict[str, Any]:
        """The one incident, once escalated with its proposal (read through the CLI)."""

        async def escalated() -> dict[str, Any] | None:
            page = await self.json("incidents", "list", "--state", "escalated")
            return page["incidents"][0] if page["incidents"] else None

        found: dict[str, Any] = await eventually(escalated, timeout=30, interval=0.2)
        return found


@asynccontextmanager
async def running(app: web.Application) -> AsyncIterator[Running]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield Running(server)
    finally:
        await server.close()
