"""Hostile input against a live service with the shipped rules: no 5xx, healthy after every batch, no request
to a host a label chose, no suggested command on two lines, no link a label chose, no event-loop stall.

The service runs in this process behind a real HTTP server (aiohttp's TestServer on a loopback port), so
the event loop can be watched with asyncio's own slow-callback logging (debug mode, 100 ms threshold)
while the hostile batches are processed. Its SQLite store sits in /dev/shm when there is one: what is
measured is what an alert costs the loop, not how long this shared machine's disk takes to fsync.

A listener on a loopback port stands for every place a label might try to send the service — cloud
metadata, another service, the API itself: the labels below name it in every way we know of, and it must
never receive a single request. Add a case here for every new attack class.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import gzip
import json
import logging
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from markdown_it import MarkdownIt

from service import keys
from service.app import create_app
from service.records import inbox
from service.settings import Settings
from tests.conftest import ROOT, TOKEN, eventually
from tests.support.run_queue import RunQueueWatch

APPROVER = "approver-token-456"
PUBLIC = "http://remediator.example"
ALERTNAMES = [
    "CoordinatorDown",
    "PostgresDown",
    "ContainerOOMKilled",
    "HighErrorRate",
    "BlockchainPeerCountLow",
    "RedisDown",
    "PersistentVolumeFull",
]
LINE_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
URL_IN_TEXT = re.compile(r"(?i)(?:https?://|www\.)[^\s)\]>\"'`|]*")
STALL_S = 0.1


class SlowCallbacks(logging.Handler):
    """asyncio's debug-mode report of a callback that held the loop: 'Executing <…> took 0.123 seconds',
    less the time the loop's thread waited for a CPU meanwhile (``RunQueueWatch``: a machine busy with
    other jobs stretches a callback without it doing more)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: list[str] = []
        self.run_queue = RunQueueWatch()

    def close(self) -> None:
        self.run_queue.close()
        super().close()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executing") and isinstance(record.args, tuple):
            took = float(record.args[-1])
            own = took - self.run_queue.waited(record.created - took, record.created)
            if own >= STALL_S:
                self.seen.append(f"{message[:300]} ({own * 1000:.0f} ms of it on a CPU)")


class Recorder:
    """A loopback HTTP server that records every request it gets (path, headers, body)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.server = TestServer(app, host="127.0.0.1")

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append((request.method, request.path_qs, await request.read()))
        return web.json_response({"ok": True})

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory (/dev/shm) when there is one, for the store."""
    shm = Path("/dev/shm")
    path = Path(tempfile.mkdtemp(dir=shm if shm.is_dir() else tmp_path))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    """The shipped rules."""
    target = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", target, ignore=shutil.ignore_patterns("tests", "alerts"))
    return target


@pytest.fixture
async def service(store_dir: Path, rules: Path) -> AsyncIterator[tuple[TestServer, Recorder, Recorder]]:
    trap, notified = Recorder(), Recorder()
    await trap.server.start_server()
    await notified.server.start_server()
    settings = Settings(
        store_url=f"sqlite:///{store_dir / 'hostile.db'}",
        rules_dir=rules,
        webhook_token=TOKEN,
        approver_tokens=f"alice={APPROVER}",
        public_url=PUBLIC,
        notify_webhook_url=f"http://127.0.0.1:{notified.port}/hook",
        log_format="json",
        log_level="warning",
        probe_timeout_s=1.0,
        diagnosis_deadline_s=3.0,
        header_timeout_s=1.0,
        body_timeout_s=1.0,
    )
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        yield server, trap, notified
    finally:
        await server.close()
        await trap.server.close()
        await notified.server.close()


# ---- the hostile requests -----------------------------------------------------------------------------


def notification(alerts: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "version": "4",
        "status": "firing",
        "receiver": "remediator",
        "groupKey": '{}:{alertname="X"}',
        "truncatedAlerts": 0,
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
        **fields,
    }


_serial = iter(range(1_000_000))


def alert(alertname: str, *, labels: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
    n = next(_serial)
    return {
        "status": "firing",
        "labels": {"alertname": alertname, **(labels or {})},
        "annotations": {"summary": "hostile"},
        "startsAt": f"2026-12-06T03:{n // 60 % 60:02d}:{n % 60:02d}Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example/graph",
        "fingerprint": f"h{n:015x}",
        **fields,
    }


Request = tuple[str, dict[str, str], bytes]  # (what it tries, extra headers, body)


def as_json(what: str, body: Any, headers: dict[str, str] | None = None) -> Request:
    return what, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def ssrf(port: int) -> Iterator[Request]:
    """Labels that try to aim a probe at the trap (standing for 169.254.169.254 and friends)."""
    hosts = [
        f"x@127.0.0.1:{port}/latest/meta-data/#",
        f"127.0.0.1:{port}",
        f"localhost:{port}/",
        f"a.b@127.0.0.1:{port}?",
        f"0x7f000001:{port}",
        f"[::ffff:127.0.0.1]:{port}",
        f"127.0.0.1%2F:{port}",
        "127.0.0.1",
        f"coordinator@127.0.0.1:{port}",
        f"x/../..@127.0.0.1:{port}/#",
    ]
    for i, host in enumerate(hosts):
        name = ALERTNAMES[i % len(ALERTNAMES)]
        labels = {"namespace": host, "instance": host, "pod": host, "node": host, "service": host}
        yield as_json(f"ssrf {host!r} via {name}", notification([alert(name, labels=labels)]))
    for name in ALERTNAMES:  # every shipped rule, with the classic one
        labels = {"namespace": f"x@127.0.0.1:{port}/latest/meta-data/#", "persistentvolumeclaim": "data"}
        yield as_json(f"ssrf metadata via {name}", notification([alert(name, labels=labels)]))
    templates = ["{{ 7*7 }}", "{% for x in range(10**9) %}{% endfor %}", "{{ ''.__class__.__mro__ }}"]
    for text in templates:
        yield as_json(
            f"template injection {text!r}",
            notification([alert("CoordinatorDown", labels={"namespace": text})]),
        )


def stalls() -> Iterator[Request]:
    """Long values where one alert used to hold the loop for seconds or hours (quadratic redaction)."""
    for size in (10_000, 16_000, 60_000, 200_000):
        for filler in ("a", "a=", "password", "Bearer a", "x://a:b@"):
            value = (filler * (size // len(filler) + 1))[:size]
            yield as_json(
                f"{size}-character {filler!r} namespace",
                notification([alert("CoordinatorDown", labels={"namespace": value})]),
            )
    yield as_json(
        "long annotations",
        notification(
            [alert("RedisDown", annotations={"summary": "a" * 400_000, "description": "token=" * 60_000})]
        ),
    )


def line_breaks() -> Iterator[Request]:
    """Values that would split a suggested command a human copies."""
    for breaker in ("\n", "\r", "\r\n", "\u2028", "\u2029", "\x85", "\x1b[2K", "\x00", "\t", "\u202e"):
        value = f"prod{breaker}kubectl delete namespace prod #"
        for name in ("CoordinatorDown", "PostgresDown", "RedisDown"):
            yield as_json(
                f"{breaker!r} in namespace via {name}",
                notification([alert(name, labels={"namespace": value})]),
            )
    yield as_json(
        "line break in a label a suggestion renders",
        notification(
            [
                alert(
                    "ContainerOOMKilled",
                    labels={"namespace": "shop", "pod": "web\nrm -rf /", "container": "a\nb"},
                )
            ]
        ),
    )


def markup() -> Iterator[Request]:
    """Markdown/Slack syntax and links chosen by whoever writes the alert."""
    texts = [
        "[click](javascript:alert(1))",
        "](javascript:alert(1))",
        "![img](http://evil.example/x.png)",
        "<script>alert(1)</script>",
        "<http://evil.example|click here>",
        "<!channel> <!here> @channel",
        "visit http://evil.example/login or www.evil.example",
        "```\nrm -rf /\n```",
        "| a | b |\n|---|---|",
        "# heading\n> quote",
        "&lt;b&gt; &amp; &#106;avascript:",
    ]
    for i, text in enumerate(texts):
        name = ALERTNAMES[i % len(ALERTNAMES)]
        yield as_json(
            f"markup {text[:30]!r}",
            notification(
                [
                    alert(
                        name,
                        labels={"namespace": "shop", "service": text[:60]},
                        annotations={
                            "summary": text,
                            "description": text,
                            "runbook_url": "http://evil.example/rb",
                        },
                        generatorURL="javascript:alert(document.cookie)",
                    )
                ]
            ),
        )
    for url in (
        "http://evil.example/graph",
        "data:text/html,<script>x</script>",
        "http://user:pw@prometheus.example/",
    ):
        yield as_json(
            f"link field {url!r}",
            notification(
                [
                    alert(
                        "HighErrorRate",
                        labels={"namespace": "shop"},
                        generatorURL=url,
                        annotations={"runbook_url": url},
                    )
                ]
            ),
        )


def amplification() -> Iterator[Request]:
    """One request that would make the store write many times its size."""
    many = [alert("HighErrorRate", labels={"namespace": "shop", "i": str(i)}) for i in range(500)]
    for size in (64 * 1024, 900 * 1024):
        yield as_json(f"{size}-byte groupKey", notification([alert("HighErrorRate")], groupKey="g" * size))
    yield as_json("64 KiB groupKey over 500 alerts", notification(many, groupKey="g" * 65536))
    yield as_json("receiver of 100 KiB", notification([alert("HighErrorRate")], receiver="r" * 100_000))
    yield as_json(
        "10,000 labels", notification([alert("HighErrorRate", labels={f"l{i}": "v" for i in range(10_000)})])
    )
    yield as_json("label name of 50 KiB", notification([alert("HighErrorRate", labels={"n" * 50_000: "v"})]))


def bad_values() -> Iterator[Request]:
    """Values that used to fail a whole group commit (and every request in it) or the database."""
    for value in (2**63, 2**63 - 1, 2**31, 2**64, -1, 1.5, "9" * 400, None, True):
        yield as_json(
            f"truncatedAlerts={value!r}", notification([alert("HighErrorRate")], truncatedAlerts=value)
        )
    for field in ("fingerprint", "receiver", "groupKey"):
        body = notification([alert("HighErrorRate")])
        if field == "fingerprint":
            body["alerts"][0]["fingerprint"] = "ab\x00cd"
        else:
            body[field] = "x\x00y"
        yield as_json(f"NUL in {field}", body)
    yield as_json("NUL in alertname", notification([alert("High\x00ErrorRate")]))
    yield as_json("NUL in a label name", notification([alert("HighErrorRate", labels={"a\x00b": "v"})]))
    yield as_json(
        "NUL in a label value", notification([alert("HighErrorRate", labels={"namespace": "sh\x00op"})])
    )
    yield as_json("fingerprint of 10 KiB", notification([alert("HighErrorRate", fingerprint="f" * 10_240)]))
    yield as_json("empty fingerprint", notification([alert("HighErrorRate", fingerprint="")]))
    yield as_json("lone surrogate", notification([alert("HighErrorRate", labels={"namespace": "\ud800"})]))


def malformed() -> Iterator[Request]:
    """Requests that used to answer 500."""
    for starts in (
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "0000-00-00T00:00:00Z",
        "2026-13-45T99:99:99Z",
        "+275760-09-13T00:00:00Z",
        "2026-12-06T03:00:00",
        "1e400",
    ):
        yield as_json(f"startsAt {starts}", notification([alert("HighErrorRate", startsAt=starts)]))
    yield as_json(
        "endsAt overflow", notification([alert("HighErrorRate", endsAt="9999-12-31T23:59:59-01:00")])
    )
    good = json.dumps(notification([alert("HighErrorRate")])).encode()
    corrupt = gzip.compress(good)[:-12] + b"\x00" * 12
    yield "corrupt gzip", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, corrupt
    yield "gzip header, plain body", {"Content-Type": "application/json", "Content-Encoding": "gzip"}, good
    yield "deflate garbage", {"Content-Type": "application/json", "Content-Encoding": "deflate"}, b"\xff" * 64
    yield "unknown encoding", {"Content-Type": "application/json", "Content-Encoding": "br"}, b"\x8b\x00"
    yield "deep nesting", {"Content-Type": "application/json"}, b"[" * 100_000 + b"]" * 100_000
    yield "invalid JSON", {"Content-Type": "application/json"}, b'{"version": "4", "alerts": [}'
    yield "not UTF-8", {"Content-Type": "application/json"}, b'{"version": "4\xff\xfe"}'
    yield "alerts not a list", *as_json("", notification([]) | {"alerts": {"a": 1}})[1:]
    yield "labels not a map", *as_json("", notification([alert("X") | {"labels": ["a"]}]))[1:]
    yield "label value a number", *as_json("", notification([alert("X", labels={"n": 1})]))[1:]  # type: ignore[dict-item]
    yield "body is a string", {"Content-Type": "application/json"}, b'"alerts"'
    yield "charset latin-1", {"Content-Type": "application/json; charset=latin-1"}, good
    yield "bad charset", {"Content-Type": "application/json; charset=nope"}, good


REQUESTS = {
    "malformed": malformed,
    "bad values": bad_values,
    "amplification": amplification,
    "markup": markup,
    "line breaks": line_breaks,
    "stalls": stalls,
}


async def slow_client(port: int, *, head_done: bool) -> int:
    """Trickle a request (its head, or its body once the head is sent) a byte at a time; the status
    answered, or 0 when the service closed the connection without an answer."""
    body = json.dumps(notification([alert("HighErrorRate")])).encode()
    head = (
        f"POST /v1/alerts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if head_done:
            writer.write(head)
        trickle = body if head_done else head
        for i in range(len(trickle)):
            if reader.at_eof():
                break
            writer.write(trickle[i : i + 1])
            await asyncio.sleep(0.2)
            if i > 30:  # long past both timeouts
                break
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1]) if line else 0
    except ConnectionError:
        return 0
    finally:
        writer.close()


async def raw_request(port: int, head: bytes, body: bytes = b"") -> int:
    """Send bytes aiohttp's client would refuse to send (non-UTF-8 headers); the status code answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head + body)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1]) if line else 0  # 0: closed without an answer (never a 5xx)
    except ConnectionError:
        return 0
    finally:
        writer.close()


# ---- the suite ----------------------------------------------------------------------------------------


async def test_hostile_alerts_get_no_5xx_reach_no_host_split_no_command_and_never_stall_the_loop(
    service: tuple[TestServer, Recorder, Recorder],
) -> None:
    server, trap, notified = service
    port = server.port
    assert port is not None
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    answers: list[tuple[str, int]] = []
    slow = SlowCallbacks()
    loop = asyncio.get_running_loop()

    async with aiohttp.ClientSession(base_url=base) as session:

        async def settle() -> None:
            async def idle() -> bool:
                async with session.get("/v1/incidents?limit=1000", headers=auth) as response:
                    assert response.status == 200
                return await inbox.backlog(server.app[keys.STORE]) == 0

            await eventually(idle, timeout=60, interval=0.2)
            for path in ("/healthz", "/readyz"):
                async with session.get(path) as response:
                    assert response.status == 200, f"{path} after a hostile batch: {response.status}"

        # warm up (first use of the probes' clients and renderers), then watch the loop
        for name in ALERTNAMES:
            async with session.post(
                "/v1/alerts", json=notification([alert(name, labels={"namespace": "shop"})]), headers=auth
            ) as r:
                assert r.status == 200
        await settle()
        gc.collect()  # as `remediator serve` does once started (cli._freeze_heap): a full collection then
        gc.freeze()  # scans what requests allocate, not the test runner's and every test module's objects
        logging.getLogger("asyncio").addHandler(slow)
        loop.set_debug(True)
        loop.slow_callback_duration = STALL_S
        try:
            batches = {"ssrf": lambda: ssrf(trap.port), **REQUESTS}
            for batch, make in batches.items():
                for what, headers, body in make():
                    answers.append(
                        (f"{batch}: {what}", await post_status(session, body, {**auth, **headers}))
                    )
                await settle()
            # credentials and paths no client library would send
            for label, head in {
                "non-UTF-8 bearer": b"Authorization: Bearer \xff\xfe\xfd\r\n",
                "non-UTF-8 basic": b"Authorization: Basic " + base64.b64encode(b"u:\xff\xfe") + b"\r\n",
                "latin-1 token": b"Authorization: Bearer t\xe9st\r\n",
                "NUL in token": b"Authorization: Bearer a\x00b\r\n",
            }.items():
                for path in ("/v1/alerts", "/v1/incidents", "/v1/incidents/x/ack", "/v1/pause"):
                    method = b"GET" if path == "/v1/incidents" else b"POST"
                    request = method + b" " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + head
                    request += (
                        b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n"
                    )
                    answers.append((f"{label} on {path}", await raw_request(port, request, b"{}")))
            for path in (
                "/v1/incidents/%00",
                "/v1/incidents/" + "a" * 5000,
                "/v1/incidents?limit=99999999999999999999",
                "/v1/incidents?cursor=%ff%fe",
                "/v1/incidents?state=%00",
                "/v1/incidents/x/report",
                "/v1/incidents?limit=-1&cursor=" + "A" * 4000,
            ):
                async with session.get(path, headers=auth) as response:
                    answers.append((f"GET {path[:60]}", response.status))
            for path in (
                "/v1/incidents/%00/ack",
                "/v1/incidents/x/actions/%00/approve",
                "/v1/incidents/x/actions/y/reject",
            ):
                async with session.post(path, headers={"Authorization": f"Bearer {APPROVER}"}) as response:
                    answers.append((f"POST {path}", response.status))
            await settle()
        finally:
            loop.set_debug(False)
            logging.getLogger("asyncio").removeHandler(slow)
            slow.close()
            gc.unfreeze()

        # slow clients hold no place for long, and the service answers others meanwhile (outside the
        # loop watch: 40 connections accepted at once cost debug mode's task bookkeeping, not an alert)
        trickles = [asyncio.create_task(slow_client(port, head_done=i % 2 == 0)) for i in range(40)]
        for name in ALERTNAMES:
            meanwhile = notification([alert(name, labels={"namespace": "shop"})])
            async with session.post("/v1/alerts", json=meanwhile, headers=auth) as response:
                answers.append((f"slow clients: {name} meanwhile", response.status))
                assert response.status == 200
        cut = await asyncio.gather(*trickles)
        answers.extend((f"slow clients: {'body' if i % 2 == 0 else 'head'}", c) for i, c in enumerate(cut))
        assert set(cut[0::2]) == {408}, "a slow body is answered 408"
        assert set(cut[1::2]) == {0}, "a slow head is cut off"
        await settle()
        incidents = (await (await session.get("/v1/incidents?limit=1000", headers=auth)).json())["incidents"]
        details = [
            await (await session.get(f"/v1/incidents/{i['id']}", headers=auth)).json() for i in incidents
        ]
        reports = [
            await (await session.get(f"/v1/incidents/{i['id']}/report", headers=auth)).text()
            for i in incidents
        ]

    assert len(answers) >= 200, len(answers)
    server_errors = [(what, status) for what, status in answers if status >= 500]
    assert server_errors == [], server_errors
    assert trap.requests == [], f"a label aimed the service at a host it chose: {trap.requests[:3]}"
    assert slow.seen == [], f"the event loop stalled: {slow.seen[:3]}"
    assert len(incidents) > 20, "the hostile alerts were meant to open incidents"

    for detail in details:
        bundle = detail.get("bundle") or {}
        for suggestion in bundle.get("suggested", []):
            command = suggestion["command"]
            assert not LINE_BREAKS.search(command), (
                f"a suggestion spans lines or hides characters: {command!r}"
            )
        if not detail["target"]["valid"]:
            templated = [
                f
                for f in detail["findings"]
                if f["probe"].startswith(("http.", "tcp.", "dns.", "redis.", "postgres."))
            ]
            assert all(f["status"] == "skipped" for f in templated), [
                (f["id"], f["status"], f["summary"]) for f in templated
            ]
    md = MarkdownIt("commonmark")
    for text in reports:
        for line in text.splitlines():
            if line.startswith(("kubectl", "curl", "redis-cli", "psql", "    kubectl")):
                assert "delete namespace prod" not in line, line
        for href in _hrefs(md, text):
            assert href.startswith(PUBLIC + "/") or href in RULE_RUNBOOKS, (
                f"a link in the report goes to {href!r}"
            )
        for url in _bare_urls(md, text):  # GitHub would autolink it
            assert url.startswith(PUBLIC) or url in RULE_RUNBOOKS, f"a bare URL in the report: {url!r}"
    assert notified.requests, "the webhook notifier was expected to deliver"
    for _method, _path, body in notified.requests:  # what the webhook receiver shows a human
        markdown = json.loads(body).get("markdown", "")
        for href in _hrefs(md, markdown):
            assert href.startswith(PUBLIC + "/") or href in RULE_RUNBOOKS, (
                f"a link in a notification goes to {href!r}"
            )
        for url in _bare_urls(md, markdown):
            assert url.startswith(PUBLIC), f"a bare URL in a notification: {url!r}"


async def post_status(session: aiohttp.ClientSession, body: bytes, headers: dict[str, str]) -> int:
    """The status answered to a hostile POST. A server may answer a refused body before reading all of it
    and close the connection (the client then sees a reset mid-send): that attempt is sent once more, and a
    second reset counts as 0 (no answer — never a 5xx)."""
    for _attempt in range(2):
        try:
            async with session.post("/v1/alerts", data=body, headers=headers) as response:
                return response.status
        except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
            continue
    return 0


#: the shipped rules' own runbook links: trusted configuration, the only links not to our own host
RULE_RUNBOOKS = frozenset(
    str(yaml.safe_load(path.read_text()).get("runbook_url"))
    for path in (Path(__file__).resolve().parents[2] / "rules").glob("*.yaml")
)


def _hrefs(md: MarkdownIt, text: str) -> list[str]:
    found: list[str] = []

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.type in ("link_open", "image"):
                found.append(str(token.attrs.get("href") or token.attrs.get("src") or ""))
            if token.type in ("html_inline", "html_block"):
                found.append(f"html:{token.content[:40]}")
            if token.children:
                walk(token.children)

    walk(md.parse(text))
    return found


def _bare_urls(md: MarkdownIt, text: str) -> list[str]:
    """URLs in the text GitHub-flavoured Markdown would autolink: plain text, not code spans or blocks."""
    found: list[str] = []

    def walk(tokens: list[Any]) -> None:
        for token in tokens:
            if token.type == "text":
                found.extend(URL_IN_TEXT.findall(token.content))
            if token.children:
                walk(token.children)

    walk(md.parse(text))
    return found
