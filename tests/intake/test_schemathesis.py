"""schemathesis fuzzes the live service from its own OpenAPI document (``GET /v1/openapi.json``).

The service runs on a loopback port (its own event loop in a thread; SQLite store, the shipped and test
rules, dry run) with a webhook token and an approver token; one incident is opened first by posting a
captured Alertmanager payload, so the read API has real rows to answer with. Every JSON-API operation of
the document gets generated requests — valid ones (positive) and, where its inputs can be wrong, ones that
break the schema (negative: wrong types, missing fields, control characters in path values) — and each
request is sent four times: with the webhook token, an approver token, an unknown token and no
credentials. Every answer must pass schemathesis' checks ``not_a_server_error`` (no 5xx at all),
``status_code_conformance`` (the status is documented), ``content_type_conformance``,
``response_schema_conformance`` (the body matches its schema) and ``response_headers_conformance`` (every
answer's ``X-Request-Id``). ``test_real_rows_match_the_document`` checks the answers random ids never
reach: an existing incident's detail and report, a page of the list, an acknowledgement.

Out of scope (excluded by path, documented as HTML/form endpoints elsewhere): the console (``/ui/…``:
HTML behind a session cookie and CSRF tokens) and Slack's interactions (``/v1/slack/interactions``: signed
form posts). HEAD (aiohttp's automatic twin of every GET) is not in the document and not fuzzed.

Deterministic for CI: hypothesis derandomized, no example database, no deadline, ``MAX_EXAMPLES`` per
operation and generation mode (``FUZZ_EXAMPLES`` overrides it for a deeper run by hand). The module
takes about 50 s on two cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from service.app import create_app
from service.intake import openapi
from service.settings import Settings
from tests.conftest import AM_FIXTURES, FIXTURES, ROOT, TOKEN
from tests.support import procs

APPROVER = "fuzz-approver-token-789"
#: examples per operation and mode; FUZZ_EXAMPLES=500 for a deeper run by hand
MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "50"))
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
#: who sends each generated request: the webhook token, an approver, an unknown token, nobody
CREDENTIALS: dict[str, str | None] = {
    "webhook": TOKEN,
    "approver": APPROVER,
    "unknown": "not-a-known-token",
    "none": None,
}
OUT_OF_SCOPE = r"^/ui|^/v1/slack/"


@dataclass(frozen=True)
class Live:
    """The running service: its base URL, the incident opened before fuzzing, a session without proxies."""

    url: str
    incident: str
    session: requests.Session


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # loopback: never through HTTP(S)_PROXY
    return session


@contextlib.contextmanager
def _serving(workdir: Path) -> Iterator[str]:
    """The app on a free loopback port, served by its own event loop in a thread (the fuzzer's client is
    synchronous); its base URL. SQLite store, the shipped and test rules, dry run."""
    rules = workdir / "rules"
    rules.mkdir()
    for source in [*(ROOT / "rules").glob("*.yaml"), *(FIXTURES / "rules").glob("*.yaml")]:
        shutil.copy(source, rules / source.name)
    settings = Settings(
        store_url=f"sqlite:///{workdir / 'fuzz.db'}",
        rules_dir=rules,
        webhook_token=TOKEN,
        approver_tokens=f"alice={APPROVER}",
        dry_run=True,
        log_format="json",
        log_level="warning",
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fuzzed-service", daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(60)

    runner = web.AppRunner(create_app(settings), access_log=None)
    port = procs.free_port()
    try:
        run(runner.setup())
        run(web.TCPSite(runner, "127.0.0.1", port).start())
        yield f"http://127.0.0.1:{port}"
    finally:
        run(runner.cleanup())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _seed(url: str, session: requests.Session) -> str:
    """Post a captured firing payload and wait for its incident; its id."""
    body = (AM_FIXTURES / "am-0.25-firing.json").read_bytes()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    posted = session.post(f"{url}/v1/alerts", data=body, headers=headers, timeout=10)
    assert posted.status_code == 200, posted.text
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        page = session.get(f"{url}/v1/incidents", headers=headers, timeout=10).json()
        if page["incidents"]:
            return str(page["incidents"][0]["id"])
        time.sleep(0.05)
    raise AssertionError("the seeded alert opened no incident within 15 s")


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    with _serving(tmp_path_factory.mktemp("fuzz")) as url, _session() as session:
        yield Live(url, _seed(url, session), session)


@pytest.fixture(scope="module")
def api_schema(live: Live) -> Any:
    """The document as the live service serves it, the JSON API only, bounded and derandomized."""
    schema = schemathesis.openapi.from_url(f"{live.url}/v1/openapi.json", timeout=10)
    schema.config.update(base_url=live.url)
    schema.config.generation.update(
        modes=[schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE],
        max_examples=MAX_EXAMPLES,
        deterministic=True,
        with_security_parameters=False,
    )
    return schema.exclude(path_regex=OUT_OF_SCOPE)


def _send(case: schemathesis.Case, live: Live, who: str) -> None:
    token = CREDENTIALS[who]
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers
    case.call_and_validate(session=live.session, checks=CHECKS, timeout=30)


def _can_be_wrong(operation: dict[str, Any]) -> bool:
    """Whether a request can break the operation's schema: a body, or a parameter narrower than any string
    (an operation whose only inputs are free strings has no negative case)."""
    free = {"type": "string"}
    return "requestBody" in operation or any(p["schema"] != free for p in operation.get("parameters", ()))


def _cases() -> list[tuple[str, str, schemathesis.GenerationMode]]:
    """(METHOD, path, mode) of every operation in scope: positive for all, negative where one can be
    wrong. Read from the module the document is served from, for the test ids; the fuzzer itself reads
    the live document."""
    cases = []
    for path, item in openapi.DOCUMENT["paths"].items():
        if re.match(OUT_OF_SCOPE, path):
            continue
        for method, operation in item.items():
            cases.append((method.upper(), path, schemathesis.GenerationMode.POSITIVE))
            if _can_be_wrong(operation):
                cases.append((method.upper(), path, schemathesis.GenerationMode.NEGATIVE))
    return cases


@pytest.mark.parametrize(("method", "path", "mode"), _cases())
def test_every_answer_matches_the_document(
    api_schema: Any, live: Live, method: str, path: str, mode: schemathesis.GenerationMode
) -> None:
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        for who in CREDENTIALS:
            _send(case, live, who)

    fuzz()


def test_real_rows_match_the_document(api_schema: Any, live: Live) -> None:
    """The answers the fuzzer rarely reaches with random ids — an existing incident's detail and report, a
    page of the list — match their schemas too (and the approver's acknowledgement is documented)."""
    approver = {"Authorization": f"Bearer {APPROVER}"}
    reads = [
        ("/v1/incidents", "GET", {}, {"limit": 1}),
        ("/v1/incidents/{id}", "GET", {"id": live.incident}, {}),
        ("/v1/incidents/{id}/report", "GET", {"id": live.incident}, {}),
        ("/v1/pause", "GET", {}, {}),
        ("/v1/incidents/{id}/ack", "POST", {"id": live.incident}, {}),
    ]
    statuses = []
    for path, method, path_parameters, query in reads:
        case = api_schema[path][method].Case(path_parameters=path_parameters, query=query, headers=approver)
        response = case.call_and_validate(session=live.session, checks=CHECKS, timeout=30)
        statuses.append(response.status_code)
    assert statuses[:4] == [200, 200, 200, 200]
    assert statuses[4] in (200, 409)
    detail = live.session.get(f"{live.url}/v1/incidents/{live.incident}", headers=approver, timeout=10)
    assert json.loads(detail.text)["id"] == live.incident
