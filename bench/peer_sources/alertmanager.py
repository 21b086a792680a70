"""An ansible-rulebook event source that does what ``ansible.eda.alertmanager`` does (the collection is on
Galaxy, which this machine cannot reach): one event with the original payload, then one event per alert
with its host from ``labels.instance``; answers 202 once the events are queued (not once they are handled).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

QUEUE = web.AppKey("queue", asyncio.Queue)


async def webhook(request: web.Request) -> web.Response:
    payload = await request.json()
    endpoint = request.match_info["endpoint"]
    headers = dict(request.headers)
    queue = request.app[QUEUE]
    await queue.put({"payload": payload, "meta": {"endpoint": endpoint, "headers": headers}})
    alerts = payload.get("alerts", [])
    for alert in alerts if isinstance(alerts, list) else [alerts]:
        host = alert.get("labels", {}).get("instance")
        hosts = [host.split(":")[0]] if host else []
        meta = {"endpoint": endpoint, "headers": headers, "hosts": hosts}
        await queue.put({"alert": alert, "meta": meta})
    return web.Response(status=202, text="Received")


async def main(queue: asyncio.Queue[Any], args: dict[str, Any]) -> None:
    app = web.Application()
    app[QUEUE] = queue
    app.router.add_post("/{endpoint:.*}", webhook)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.get("host", "127.0.0.1"), int(args.get("port", 5000))).start()
    try:
        await asyncio.Future()
    finally:
        await runner.cleanup()
