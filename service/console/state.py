"""What the console keeps for the life of the application: the session secret, the templates, its static
files, and the approved actions it runs in the background (drained when the service stops)."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import jinja2
import structlog
from aiohttp import web

from service.console import formats
from service.settings import Settings

log = structlog.get_logger(__name__)

STATIC_TYPES = {"console.js": "text/javascript", "console.css": "text/css"}


@dataclass
class Console:
    secret: bytes
    ttl_s: float
    templates: jinja2.Environment
    static: dict[str, bytes]
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    def render(self, name: str, **context: Any) -> str:
        """A template rendered (autoescaped); what a page does not set is empty."""
        values = {"session": None, "flash": None, "banner": None, "csrf": "", "back": "/ui/", **context}
        return self.templates.get_template(name).render(**values)

    def spawn(self, work: Any) -> None:
        """Run ``work`` (a coroutine) in the background, kept until it finishes."""
        task = asyncio.get_running_loop().create_task(work, name="console.approved")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)


CONSOLE: web.AppKey[Console] = web.AppKey("console", Console)


def build(settings: Settings) -> Console:
    """The console's state; without ``REMEDIATOR_SESSION_SECRET`` a random key for this process only."""
    if settings.session_secret is not None:
        secret = settings.session_secret.get_secret_value().encode()
    else:
        secret = secrets.token_bytes(32)
        log.warning(
            "console.session_secret_random",
            detail="REMEDIATOR_SESSION_SECRET is not set: console sessions do not survive a restart and do "
            "not span replicas",
        )
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("service.console", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    templates.filters.update(formats.FILTERS)
    folder = resources.files("service.console").joinpath("static")
    static = {name: folder.joinpath(name).read_bytes() for name in STATIC_TYPES}
    return Console(secret=secret, ttl_s=settings.session_ttl_s, templates=templates, static=static)


async def drain(app: web.Application) -> None:
    """On shutdown: let approved actions started from the console finish (bounded), then cancel the rest."""
    tasks = set(app[CONSOLE].tasks)
    if not tasks:
        return
    _done, pending = await asyncio.wait(tasks, timeout=30)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
