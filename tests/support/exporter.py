"""A local Prometheus exporter served from its own thread, and the Prometheus set-up around it: a scrape
config for one exporter and a wait until Prometheus has scraped what a test needs."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from tests.support import procs


class MetricsExporter:
    """Serves ``/metrics`` (Prometheus text format) in its own thread; subclasses say what in ``render``."""

    thread_name = "exporter"

    def __init__(self) -> None:
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, name=self.thread_name, daemon=True)

    def render(self) -> list[str]:
        """The exposition lines, one series each."""
        raise NotImplementedError

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text="\n".join(self.render()) + "\n", content_type="text/plain")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app_runner = web.AppRunner(app)
        self._loop.run_until_complete(app_runner.setup())
        self._loop.run_until_complete(web.TCPSite(app_runner, procs.HOST, self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(app_runner.cleanup())
        self._loop.close()

    def __enter__(self) -> Self:
        self.port = procs.free_port()
        self._thread.start()
        assert self._ready.wait(10), "exporter did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def scrape_config(
    job: str, exporter: MetricsExporter, global_: dict[str, str], *, honor_labels: bool = False
) -> dict[str, Any]:
    """A Prometheus configuration that scrapes ``exporter`` alone, as ``job``."""
    scrape: dict[str, Any] = {"job_name": job}
    if honor_labels:
        scrape["honor_labels"] = True
    scrape["static_configs"] = [{"targets": [f"{procs.HOST}:{exporter.port}"]}]
    return {"global": global_, "scrape_configs": [scrape]}


def wait_for_scrape(
    server: procs.Prometheus,
    query: str,
    *,
    timeout: float = 20,
    interval: float = 0.2,
    until: Callable[[list[Any]], bool] = bool,
    message: str = "Prometheus never scraped the exporter",
) -> None:
    """Poll ``query`` until ``until(result)``; fail with ``message`` (``{result}`` is filled in) after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = server.query(query)["data"]["result"]
        if until(result):
            return
        assert time.monotonic() < deadline, message.format(result=result)
        time.sleep(interval)
