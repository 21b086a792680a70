"""Logs of a real ``remediator serve``: one JSON line per record, ours and every library's (aiohttp, asyncio,
Alembic, warnings), nothing else on stdout or stderr; the request id of each request in its answer and in
the log lines written while handling it."""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import service
from tests.conftest import ROOT, TOKEN, load_fixture
from tests.support import procs

GENERATED = re.compile(r"[0-9a-f]{32}")


def _serve(tmp: Path) -> procs.Proc:
    port = procs.free_port()
    return procs.Proc(
        [sys.executable, "-m", "service", "serve"],
        log_path=tmp / "serve.log",  # stdout and stderr, both
        port=port,
        workdir=tmp,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp}/fresh.db",  # migrated at start: Alembic logs
            "REMEDIATOR_RULES_DIR": str(ROOT / "rules"),
            "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
            "REMEDIATOR_LOG_FORMAT": "json",
            "REMEDIATOR_LOG_LEVEL": "info",
        },
    )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Proc]:
    with _serve(tmp_path_factory.mktemp("logs")).start() as proc:
        assert proc.port is not None
        procs.wait_for_http(f"http://127.0.0.1:{proc.port}/healthz", 20, proc=proc)
        yield proc


def records(proc: procs.Proc) -> list[dict[str, Any]]:
    """Every line the process wrote so far, each parsed: a line that is not a JSON object fails the test."""
    out = []
    for line in proc.log_path.read_text().splitlines():
        if (
            line.startswith("==== ") and " starting: " in line
        ):  # the marker procs.Proc writes, not the service
            continue
        try:
            record = json.loads(line)
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
        assert isinstance(record, dict), line
        assert {"event", "level", "timestamp", "logger"} <= record.keys(), line
        out.append(record)
    return out


def wait_for(proc: procs.Proc, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in records(proc) if predicate(r)]
        if found:
            return found[0]
        assert time.monotonic() < deadline, "no such log line:\n" + proc.log_path.read_text()[-3000:]
        time.sleep(0.05)


def request(
    proc: procs.Proc, method: str, path: str, *, body: Any = None, headers: dict[str, str] | None = None
) -> http.client.HTTPResponse:
    assert proc.port is not None
    conn = http.client.HTTPConnection("127.0.0.1", proc.port, timeout=10)
    payload = json.dumps(body).encode() if body is not None else None
    conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    response.read()
    conn.close()
    return response


def raw(proc: procs.Proc, head: bytes) -> bytes:
    """Send ``head`` as is (what no well-behaved client would) and return the whole answer."""
    assert proc.port is not None
    with socket.create_connection(("127.0.0.1", proc.port), timeout=10) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


_sent = itertools.count()


def unmatched_alert() -> dict[str, Any]:
    """A new alert (its own fingerprint: never a duplicate) that matches no rule: intake logs it."""
    payload = load_fixture("am-0.25-firing.json")
    for alert in payload["alerts"]:
        n = next(_sent)
        alert["labels"]["alertname"] = "LogsTestMatchesNoRule"
        alert["labels"]["n"] = str(n)
        alert["fingerprint"] = f"{n:016x}"
    return payload


def test_the_request_id_sent_comes_back_and_marks_the_lines_of_its_request(served: procs.Proc) -> None:
    answer = request(
        served,
        "POST",
        "/v1/alerts",
        body=unmatched_alert(),
        headers={"Authorization": f"Bearer {TOKEN}", "X-Request-Id": "abc-123"},
    )
    assert answer.status == 200
    assert answer.headers["X-Request-Id"] == "abc-123"
    line = wait_for(served, lambda r: r["event"] == "alert.unmatched" and r.get("request_id") == "abc-123")
    assert line["logger"] == "service.intake.webhook"
    started = wait_for(served, lambda r: r["event"] == "service.started")
    assert started["version"] == service.__version__
    assert "request_id" not in started  # logged outside any request
    # the next request on the same process does not inherit the id
    again = request(
        served, "POST", "/v1/alerts", body=unmatched_alert(), headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert again.status == 200
    fresh = again.headers["X-Request-Id"]
    assert GENERATED.fullmatch(fresh)
    line = wait_for(served, lambda r: r.get("request_id") == fresh)
    assert line["event"] == "alert.unmatched"
    assert [
        r for r in records(served) if r.get("request_id") == "abc-123" and r["event"] != "alert.unmatched"
    ] == []


def test_refusals_and_errors_carry_a_request_id_too(served: procs.Proc) -> None:
    unauthorized = request(
        served, "POST", "/v1/alerts", body=unmatched_alert(), headers={"X-Request-Id": "r-401"}
    )
    assert unauthorized.status == 401
    assert unauthorized.headers["X-Request-Id"] == "r-401"
    missing = request(served, "GET", "/v1/no-such-route")
    assert missing.status == 404
    assert GENERATED.fullmatch(missing.headers["X-Request-Id"])
    bad = request(
        served, "POST", "/v1/alerts", body={"alerts": "nope"}, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert bad.status == 400
    assert GENERATED.fullmatch(bad.headers["X-Request-Id"])
    ids = {missing.headers["X-Request-Id"], bad.headers["X-Request-Id"]}
    assert len(ids) == 2  # generated per request


@pytest.mark.parametrize(
    "hostile",
    [
        b"x" * 1024,  # too long
        b"abc 123",
        b'abc", "level": "critical',  # would forge fields in a line built by hand
        "r\u00e9sum\u00e9".encode(),  # not ASCII
    ],
)
def test_a_hostile_request_id_is_replaced_and_never_logged(served: procs.Proc, hostile: bytes) -> None:
    answer = raw(
        served,
        b"POST /v1/alerts HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\n"
        + b"Authorization: Bearer "
        + TOKEN.encode()
        + b"\r\nContent-Length: "
        + str(len(body := json.dumps(unmatched_alert()).encode())).encode()
        + b"\r\nX-Request-Id: "
        + hostile
        + b"\r\n\r\n"
        + body,
    )
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 200"), head
    (given,) = re.findall(r"(?im)^X-Request-Id: (.*?)\r?$", head)
    assert GENERATED.fullmatch(given), given
    wait_for(served, lambda r: r.get("request_id") == given)
    text = served.log_path.read_bytes()
    assert hostile not in text
    assert hostile.decode("utf-8") not in text.decode("utf-8")


FORGED = b'{"event": "forged.line", "level": "critical"}'


@pytest.mark.parametrize("hostile", [b"abc\n" + FORGED, b"abc\x7f" + FORGED, b"abc\x00" + FORGED])
def test_a_header_with_a_line_break_or_control_character_is_refused_and_logged_as_one_json_line(
    served: procs.Proc, hostile: bytes
) -> None:
    """A line break or a control character cannot be in a header value: the request is not HTTP. aiohttp
    answers 400 itself, before the application (so without a request id), and logs it (``aiohttp.server``):
    one JSON line, the parser's error — quoting the bytes escaped — as its ``exception`` field."""
    before = len([r for r in records(served) if r["logger"] == "aiohttp.server"])
    answer = raw(served, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + hostile + b"\r\n\r\n")
    assert re.match(rb"HTTP/1\.[01] 400 ", answer), answer[:100]
    deadline = time.monotonic() + 10
    while len(lines := [r for r in records(served) if r["logger"] == "aiohttp.server"]) == before:
        assert time.monotonic() < deadline, "aiohttp logged nothing"
        time.sleep(0.05)
    assert len(lines) == before + 1, lines
    line = lines[-1]
    assert line["level"] == "error" and line["event"].startswith("Error handling request")
    assert "BadHttpMessage" in line["exception"] or "Invalid" in line["exception"], line["exception"]
    assert [r for r in records(served) if r["event"] == "forged.line"] == []
    assert hostile not in served.log_path.read_bytes()


def test_migrations_log_through_the_same_json_lines(served: procs.Proc) -> None:
    upgrades = [r for r in records(served) if r["logger"] == "alembic.runtime.migration"]
    assert any(r["event"].startswith("Running upgrade") for r in upgrades), upgrades
    assert {r["level"] for r in upgrades} == {"info"}
    assert not [r for r in records(served) if r["logger"].startswith("sqlalchemy")]  # no SQL echoed


SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, time, warnings

    import structlog

    from service.observability import configure_logging

    configure_logging(fmt="json", level="info")


    async def main() -> None:
        asyncio.get_running_loop().slow_callback_duration = 0.05
        time.sleep(0.1)  # blocks the loop: asyncio's warning

        async def fails() -> None:
            raise RuntimeError("lost in a task")

        asyncio.ensure_future(fails())  # never awaited: asyncio's error, with the exception
        await asyncio.sleep(0.01)


    asyncio.run(main(), debug=True)
    warnings.warn("an old API", DeprecationWarning, stacklevel=1)
    logging.getLogger("asyncpg.pool").warning("a library's %s", "line")
    structlog.get_logger("service.test").info("ours", request_id_like="abc")
    """
)


def test_asyncio_warnings_and_python_warnings_are_json_lines_on_stdout(tmp_path: Path) -> None:
    script = tmp_path / "emit.py"
    script.write_text(SCRIPT)
    result = subprocess.run(
        [sys.executable, "-W", "always", str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    by_logger: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        assert {"event", "level", "timestamp", "logger"} <= line.keys(), line
        by_logger.setdefault(line["logger"], []).append(line)
    slow, lost = by_logger["asyncio"]
    assert slow["level"] == "warning" and slow["event"].startswith("Executing")
    assert lost["level"] == "error" and "RuntimeError: lost in a task" in lost["exception"]
    (warned,) = by_logger["py.warnings"]
    assert warned["level"] == "warning" and "DeprecationWarning: an old API" in warned["event"]
    (library,) = by_logger["asyncpg.pool"]
    assert library["event"] == "a library's line"
    (ours,) = by_logger["service.test"]
    assert ours["event"] == "ours" and ours["level"] == "info"


def test_a_service_started_and_stopped_wrote_nothing_but_json_lines(tmp_path: Path) -> None:
    proc = _serve(tmp_path)
    with proc.start():
        assert proc.port is not None
        procs.wait_for_http(f"http://127.0.0.1:{proc.port}/healthz", 20, proc=proc)
        assert request(proc, "GET", "/v1/incidents").status in (200, 401)
    assert proc.returncode == 0
    events = [r["event"] for r in records(proc)]
    assert "service.started" in events
