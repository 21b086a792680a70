"""The baseline: a bare aiohttp app that parses the same JSON body and answers 200 (no auth, no store).

``python -m bench.baseline PORT [uvloop]`` — what the service's intake is compared with; with ``uvloop`` it
runs on uvloop, as the service does (the goal ratio is taken against the plain asyncio one, as specified).
"""

from __future__ import annotations

import sys

import orjson
from aiohttp import web


async def post_alerts(request: web.Request) -> web.Response:
    data = orjson.loads(await request.read())
    body = orjson.dumps({"accepted": len(data["alerts"]), "duplicates": 0})
    return web.Response(body=body, content_type="application/json")


async def healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok")


def main() -> None:
    app = web.Application(client_max_size=1024 * 1024 + 1)
    app.router.add_post("/v1/alerts", post_alerts)
    app.router.add_get("/healthz", healthz)
    loop = None
    if sys.argv[2:] == ["uvloop"]:
        import uvloop

        loop = uvloop.new_event_loop()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None, loop=loop)


if __name__ == "__main__":
    main()
