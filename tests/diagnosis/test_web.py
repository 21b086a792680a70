"""``http.get`` and ``http.json`` through the real runner against a real local HTTP server: what a rule's
author reads in the finding (status, summary, facts, evidence) for healthy, broken, slow and unreachable
services, and JMESPath facts such as a peer count or a block height."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.clients import http
from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis import web as web_probes
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support import procs

TARGET = incidents.TargetRef(kind="Deployment", namespace="default", name="x")
REGISTRY = {p.name: p for p in web_probes.PROBES}
TOKEN = "tok-7f3a9c-very-secret-bearer"


async def run(
    clients: Clients, probe: str, params: dict[str, Any], timeout: float = 3.0
) -> incidents.Finding:
    spec = ProbeSpec.model_validate({"id": "web", "probe": probe, "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=TARGET,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=timeout),
    )
    return finding


def answer(status: int = 200, body: bytes | str = b"", headers: dict[str, str] | None = None) -> Any:
    async def handle(request: web.Request) -> web.Response:
        data = body.encode() if isinstance(body, str) else body
        return web.Response(status=status, body=data, headers=headers)

    return handle


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "0.3")))
    return web.Response(text="ok")


async def private(request: web.Request) -> web.Response:
    if request.headers.get("Authorization") != f"Bearer {TOKEN}":
        return web.Response(status=401, text="who are you?")
    return web.Response(text=f"welcome; you sent Authorization: Bearer {TOKEN}")


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/v1/health", answer(200, '{"status":"ok"}', {"Content-Type": "application/json"}))
    app.router.add_get("/down", answer(503, "upstream unavailable"))
    app.router.add_get("/slow", slow)
    app.router.add_get("/huge", answer(200, b"z" * 5_000_000))
    app.router.add_get(
        "/moved", answer(301, "", {"Location": "https://elsewhere.example/login?token=abc12345"})
    )
    app.router.add_get("/private", private)
    peers = {"peers": [{"id": "a"}, {"id": "b"}], "self": {"id": "c"}}
    app.router.add_get("/v1/peers", answer(200, json.dumps(peers)))
    app.router.add_get(
        "/v1/consensus", answer(200, json.dumps({"height": 123456, "round": 0, "synced": True}))
    )
    app.router.add_get("/html", answer(200, "<html>not json</html>"))
    return app


@pytest.fixture
async def base() -> AsyncIterator[str]:
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


@pytest.fixture
async def clients() -> AsyncIterator[Clients]:
    async with aiohttp.ClientSession() as session:
        yield Clients(http=http.HttpClient(session))


# ------------------------------------------------------------------------------------------ http.get


async def test_a_healthy_endpoint_is_ok(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/v1/health", "contains": '"ok"'})
    assert finding.status == "ok"
    assert finding.summary.startswith(f"GET {base}/v1/health → 200 in ")
    assert finding.facts["status_code"] == 200
    assert finding.facts["reachable"] is True
    assert finding.facts["contains"] is True
    assert finding.facts["body_bytes"] == len('{"status":"ok"}')
    assert finding.facts["location"] is None
    assert '{"status":"ok"}' in finding.evidence


async def test_an_unexpected_status_fails_and_says_what_was_expected(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/down"})
    assert finding.status == "failed"
    assert finding.summary.startswith(f"GET {base}/down → 503 in ")
    assert finding.summary.endswith("(expected 200)")
    assert finding.facts["status_code"] == 503
    assert "upstream unavailable" in finding.evidence


async def test_a_503_can_be_expected(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/down", "expect_status": [200, 503]})
    assert finding.status == "ok"


async def test_a_slow_answer_is_degraded(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/slow?s=0.2", "max_latency_ms": 100})
    assert finding.status == "degraded"
    assert finding.summary.endswith("(over 100 ms)")
    assert finding.facts["latency_ms"] >= 200


async def test_no_answer_within_timeout_fails_before_the_runner_gives_up(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/slow?s=5", "timeout_s": 0.3})
    assert finding.status == "failed"
    assert finding.summary == f"GET {base}/slow?s=5: no response within 0.3s"
    assert finding.facts["reachable"] is False
    assert finding.facts["timeout"] is True
    # without timeout_s the probe still reports its own timeout inside the runner's budget
    finding = await run(clients, "http.get", {"url": f"{base}/slow?s=5"}, timeout=1.0)
    assert finding.status == "failed"
    assert finding.facts["timeout"] is True


async def test_a_refused_connection_fails_as_unreachable(clients: Clients) -> None:
    port = procs.free_port()
    finding = await run(clients, "http.get", {"url": f"http://127.0.0.1:{port}/v1/health"})
    assert finding.status == "failed"
    assert finding.summary == (
        f"GET http://127.0.0.1:{port}/v1/health: cannot connect to 127.0.0.1:{port}: Connection refused"
    )
    assert finding.facts == {
        "reachable": False,
        "timeout": False,
        "status_code": None,
        "latency_ms": None,
        "body_bytes": 0,
        "truncated": False,
        "location": None,
        "contains": None,
    }


async def test_a_huge_body_is_cut_and_the_evidence_is_short(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/huge"})
    assert finding.status == "ok"
    assert finding.facts["truncated"] is True
    assert finding.facts["body_bytes"] == 65536
    assert len(finding.evidence) < 1200


async def test_a_missing_substring_fails(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/v1/health", "contains": "healthy"})
    assert finding.status == "failed"
    assert finding.summary.endswith("body lacks 'healthy'")
    assert finding.facts["contains"] is False


async def test_a_redirect_is_reported_with_its_location_redacted(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": f"{base}/moved"})
    assert finding.status == "failed"
    assert finding.facts["status_code"] == 301
    assert finding.facts["location"] == "https://elsewhere.example/login?token=[REDACTED]"
    assert "Location: https://elsewhere.example/login?token=[REDACTED]" in finding.summary
    assert "abc12345" not in finding.summary + finding.evidence


async def test_a_bearer_token_comes_from_a_file_and_never_shows(
    base: str, clients: Clients, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    params = {"url": f"{base}/private", "bearer_token_file": str(token_file)}
    # the token is only sent to hosts in REMEDIATOR_MONITOR_HOSTS
    refused = await run(clients, "http.get", params)
    assert refused.status == "error" and "REMEDIATOR_MONITOR_HOSTS" in refused.summary
    clients = dataclasses.replace(clients, credential_hosts=frozenset({"127.0.0.1"}))
    finding = await run(clients, "http.get", params)
    assert finding.status == "ok", finding.summary
    assert "welcome" in finding.evidence
    assert TOKEN not in finding.summary + finding.evidence + json.dumps(finding.facts)
    without = await run(clients, "http.get", {"url": f"{base}/private"})
    assert (without.status, without.facts["status_code"]) == ("failed", 401)


async def test_rules_may_not_send_authorization_headers(base: str, clients: Clients) -> None:
    finding = await run(
        clients, "http.get", {"url": f"{base}/private", "headers": {"authorization": f"Bearer {TOKEN}"}}
    )
    assert finding.status == "error"
    assert "authorization headers are not allowed in rules; use bearer_token_file" in finding.summary
    assert TOKEN not in finding.summary


async def test_a_url_that_is_not_http_is_a_bad_param(clients: Clients) -> None:
    finding = await run(clients, "http.get", {"url": "file:///etc/passwd"})
    assert finding.status == "error"
    assert finding.summary.startswith("bad params: url:")
    assert "only absolute http:// or https:// URLs are allowed" in finding.summary


# ------------------------------------------------------------------------------------------ http.json


async def test_json_facts_are_extracted_with_jmespath(base: str, clients: Clients) -> None:
    peers = await run(clients, "http.json", {"url": f"{base}/v1/peers", "facts": {"peers": "length(peers)"}})
    assert peers.status == "ok"
    assert peers.facts["peers"] == 2
    assert peers.facts["status_code"] == 200
    assert peers.summary.endswith(": peers=2")
    height = await run(
        clients,
        "http.json",
        {"url": f"{base}/v1/consensus", "facts": {"height": "height", "synced": "synced"}},
    )
    assert (height.status, height.facts["height"], height.facts["synced"]) == ("ok", 123456, True)


async def test_a_threshold_violated_is_degraded(base: str, clients: Clients) -> None:
    params = {
        "url": f"{base}/v1/peers",
        "facts": {"peers": "length(peers)"},
        "thresholds": {"peers": {"min": 3}},
    }
    finding = await run(clients, "http.json", params)
    assert finding.status == "degraded"
    assert finding.summary.endswith(": peers=2 below min 3")
    assert finding.facts["peers"] == 2


async def test_a_path_absent_from_the_body_is_null(base: str, clients: Clients) -> None:
    params = {
        "url": f"{base}/v1/consensus",
        "facts": {"peers": "length(peers)", "leader": "leader.id"},
        "thresholds": {"peers": {"min": 1}},
    }
    finding = await run(clients, "http.json", params)
    assert finding.facts["peers"] is None
    assert finding.facts["leader"] is None
    assert finding.status == "degraded"
    assert "peers is null, not a number" in finding.summary


async def test_a_body_that_is_not_json_is_an_error(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.json", {"url": f"{base}/html", "facts": {"height": "height"}})
    assert finding.status == "error"
    assert "body is not JSON" in finding.summary
    assert finding.facts["status_code"] == 200
    assert finding.facts["height"] is None
    assert "<html>not json</html>" in finding.evidence


async def test_an_unexpected_status_fails_without_parsing(base: str, clients: Clients) -> None:
    finding = await run(clients, "http.json", {"url": f"{base}/down", "facts": {"height": "height"}})
    assert finding.status == "failed"
    assert finding.facts["status_code"] == 503
    assert finding.facts["height"] is None


async def test_an_unreachable_json_endpoint_fails(clients: Clients) -> None:
    port = procs.free_port()
    finding = await run(
        clients, "http.json", {"url": f"http://127.0.0.1:{port}/", "facts": {"height": "height"}}
    )
    assert finding.status == "failed"
    assert finding.facts["reachable"] is False
    assert finding.facts["height"] is None


async def test_a_bad_jmespath_expression_is_a_clear_params_error(clients: Clients) -> None:
    finding = await run(
        clients, "http.json", {"url": "http://127.0.0.1:1/", "facts": {"peers": "length(peers"}}
    )
    assert finding.status == "error"
    assert "bad params: facts:" in finding.summary
    assert "peers: invalid JMESPath expression 'length(peers'" in finding.summary


async def test_a_threshold_must_name_an_extracted_fact() -> None:
    with pytest.raises(ValueError, match=r"thresholds name facts that are not extracted: \['height'\]"):
        web_probes.HttpJsonParams.model_validate(
            {"url": "http://x/", "facts": {"peers": "length(peers)"}, "thresholds": {"height": {"max": 1}}}
        )
