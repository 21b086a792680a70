"""The incident console under ``/ui/``: server-rendered pages for the person on call — the incident list, the
incident page with its buttons, the kill switch — behind a sign-in with an approver token (or the webhook
token, read-only).

``setup(app)`` adds the routes and the headers middleware; ``guard`` checks sessions, CSRF and roles,
``views`` renders pages (reads only), ``forms`` takes the buttons to ``intake.humans``. The templates
(autoescaped Jinja2) and the script and style sheet ship in this package: no CDN, no inline script or style.
Never shows a label value unescaped, never links anywhere but our own pages and the bundle's judged links.

URL scheme (renderings link here): ``/ui/incidents/{id}`` is the incident page; its buttons post to
``/ui/incidents/{id}/actions/{action}/approve|reject``, ``/ui/incidents/{id}/ack``,
``/ui/incidents/{id}/checklist/{item}``, ``/ui/incidents/{id}/comms/{kind}/{step}/publish``, ``/ui/pause``,
``/ui/resume``.
"""

from __future__ import annotations

from aiohttp import web

from service import keys
from service.console import forms, guard, state, views


def incident_url(base_url: str, incident_id: str) -> str:
    """The console's page of an incident, under the service's public base URL."""
    return f"{base_url.rstrip('/')}/ui/incidents/{incident_id}"


def setup(app: web.Application) -> None:
    """Add the console to ``app``: state, the outermost headers middleware, routes, and the drain of
    approved actions still running when the service stops."""
    app[state.CONSOLE] = state.build(app[keys.SETTINGS])
    app.middlewares.insert(0, guard.headers)
    app.on_shutdown.append(state.drain)
    add = app.router
    add.add_get("/ui", views.to_list)
    add.add_get("/ui/", views.incident_list)
    add.add_get("/ui/fragment", views.list_fragment)
    add.add_get("/ui/version", views.list_version)
    add.add_get("/ui/login", views.login_form)
    add.add_post("/ui/login", forms.login)
    add.add_post("/ui/logout", forms.logout)
    add.add_post("/ui/pause", forms.pause)
    add.add_post("/ui/resume", forms.resume)
    add.add_get("/ui/static/{name}", views.static)
    add.add_get("/ui/incidents/{id}", views.incident_page)
    add.add_get("/ui/incidents/{id}/fragment", views.incident_fragment)
    add.add_get("/ui/incidents/{id}/version", views.incident_version)
    add.add_get("/ui/incidents/{id}/report.md", views.report_markdown)
    add.add_post("/ui/incidents/{id}/actions/{action}/{verb:approve|reject}", forms.decide)
    add.add_post("/ui/incidents/{id}/ack", forms.acknowledge)
    add.add_post("/ui/incidents/{id}/checklist/{item}", forms.tick)
    add.add_post("/ui/incidents/{id}/comms/{kind}/{step}/publish", forms.publish)
