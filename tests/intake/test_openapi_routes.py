"""The OpenAPI document (``/v1/openapi.json``) covers every route the service serves — the JSON API, the
console's pages and forms, Slack's interactions — and documents no route that does not exist.

Routes are read from ``app.router``: HEAD (aiohttp adds one to every GET) and static files are left out; a
path variable whose pattern is a list of words (``{verb:approve|reject}``) counts as one path per word,
as the document spells each out."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from service.app import create_app
from service.intake import openapi
from tests.conftest import TOKEN

METHODS = ("get", "put", "post", "delete", "patch", "options")
_WORDS = re.compile(r"[\w.-]+(?:\|[\w.-]+)+")


def _alternatives(resource: web.AbstractResource, name: str) -> list[str] | None:
    """The words a ``{name:a|b}`` variable may take, or None for a free variable."""
    pattern = resource.get_info().get("pattern")
    if pattern is None:
        return None
    found = re.search(rf"\(\?P<{name}>([^()]*)\)", pattern.pattern)
    return found.group(1).split("|") if found and _WORDS.fullmatch(found.group(1)) else None


def _paths(resource: web.AbstractResource) -> Iterator[str]:
    paths = [resource.canonical]
    for name in re.findall(r"\{(\w+)\}", resource.canonical):
        words = _alternatives(resource, name)
        if words:
            paths = [p.replace(f"{{{name}}}", word) for p in paths for word in words]
    yield from paths


def served(app: web.Application) -> set[tuple[str, str]]:
    """(METHOD, path) of every route but HEAD and static files."""
    routes = set()
    for route in app.router.routes():
        if route.method == "HEAD" or isinstance(route.resource, web.StaticResource | None):
            continue
        assert route.resource is not None
        routes.update((route.method, path) for path in _paths(route.resource))
    return routes


def documented(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }


async def test_the_document_and_the_routes_match_both_ways(aiohttp_client: Any, make_settings: Any) -> None:
    app = create_app(make_settings(approver_tokens="alice=alice-token"))
    routes = served(app)
    client = await aiohttp_client(app)
    response = await client.get("/v1/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status == 200
    paths = documented(await response.json())

    undocumented, phantom = sorted(routes - paths), sorted(paths - routes)
    assert not undocumented, f"served but not documented: {undocumented}"
    assert not phantom, f"documented but not served: {phantom}"
    assert ("POST", "/v1/incidents/{id}/actions/{action}/approve") in routes, "alternatives are expanded"
    assert ("GET", "/v1/openapi.json") in paths


def test_every_operation_says_what_it_answers() -> None:
    for path, item in openapi.DOCUMENT["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                assert operation.get("summary"), (method, path)
                answers = operation.get("responses", {})
                assert any(code[0] in "23" for code in answers), f"{method} {path}: no success answer"
