"""Real servers from `procs` start, answer, restart and never outlive their owner."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis
import yaml

from . import procs
from .procs import (
    free_port,
    make_alert,
    start_alertmanager,
    start_postgres,
    start_prometheus,
    start_redis,
    webhook_config,
)

TOKEN = "test-bearer-token-123"


@contextmanager
def http_server(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """Serve ``handler`` in a thread on a kernel-chosen loopback port; yields the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _pid_gone(pid: int) -> bool:
    """True if ``pid`` no longer runs (absent, or a zombie waiting for PID 1, which reaps slowly here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def _pids_mentioning(path: Path) -> list[int]:
    """Live processes whose command line mentions ``path``."""
    pids = []
    for proc_dir in Path("/proc").iterdir():
        if proc_dir.name.isdigit() and proc_dir.name != str(os.getpid()):
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(path) in cmdline and not _pid_gone(int(proc_dir.name)):
                pids.append(int(proc_dir.name))
    return pids


# --------------------------------------------------------------------------------------------- ports


def test_free_port_is_below_ephemeral_range_and_unique() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == len(ports)
    assert all(20000 <= port <= 32000 for port in ports)
    low, _high = (int(x) for x in Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert max(ports) < low


def test_start_retries_with_a_fresh_port_when_the_port_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy_port = taken.getsockname()[1]
    real_free_port = procs.free_port
    offered = iter([busy_port])
    monkeypatch.setattr(procs, "free_port", lambda: next(offered, None) or real_free_port())
    try:
        with start_redis(tmp_path) as server:
            assert server.port != busy_port
            assert "address already in use" in server.log_tail(200).lower()
    finally:
        taken.close()


def test_start_is_not_fooled_by_a_foreign_server_on_its_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another session's Alertmanager on the offered port answers /-/ready too: ours must not adopt it."""
    with start_alertmanager(webhook_config("http://127.0.0.1:1/"), tmpdir=tmp_path / "other") as other:
        real_free_port = procs.free_port
        offered = iter([other.port])
        monkeypatch.setattr(procs, "free_port", lambda: next(offered, None) or real_free_port())
        with start_alertmanager(webhook_config("http://127.0.0.1:1/"), tmpdir=tmp_path / "ours") as ours:
            assert ours.port != other.port
            assert procs._owns_listening_port(ours.pid, ours.port)
            assert not procs._owns_listening_port(ours.pid, other.port)
        assert other.running


def test_failed_start_raises_with_log_tail_and_leaves_no_process(tmp_path: Path) -> None:
    with pytest.raises(procs.ServerExited, match=r"(?s)prometheus exited.*log tail") as excinfo:
        start_prometheus("scrape_configs: [{job_name: x, static_configs: nope}]\n", tmpdir=tmp_path)
    assert "yaml" in str(excinfo.value).lower()
    assert _pids_mentioning(tmp_path) == []


def test_servers_die_with_their_owner(tmp_path: Path) -> None:
    """atexit kills on a normal exit; the parent-death signal kills on os._exit (as after SIGKILL)."""
    script = textwrap.dedent(
        f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.support.procs import start_redis
        server = start_redis({str(tmp_path)!r})
        print(server.pid, flush=True)
        if sys.argv[1] == "hard":
            os._exit(0)
        """
    )
    for mode in ("atexit", "hard"):
        out = subprocess.run(
            [sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=30, check=True
        )
        pid = int(out.stdout.split()[0])
        deadline = time.monotonic() + 3
        while not _pid_gone(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _pid_gone(pid), f"redis pid {pid} outlived its owner ({mode})"


# --------------------------------------------------------------------------------------------- Alertmanager


@pytest.mark.parametrize("bearer", [TOKEN, None])
def test_webhook_config_passes_amtool(tmp_path: Path, bearer: str | None) -> None:
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(webhook_config("http://127.0.0.1:1/hook", bearer=bearer, max_alerts=5)))
    result = subprocess.run(
        ["amtool", "check-config", str(path)], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_alertmanager_delivers_posted_alert_to_webhook_with_bearer(tmp_path: Path) -> None:
    received: queue.Queue[tuple[str, dict[str, str], dict[str, Any]]] = queue.Queue()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.put((self.path, dict(self.headers), json.loads(body)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    labels = {"alertname": "DemoDown", "severity": "critical", "namespace": "demo"}
    with (
        http_server(Receiver) as base,
        start_alertmanager(webhook_config(f"{base}/hook", bearer=TOKEN), tmpdir=tmp_path) as am,
    ):
        assert am.url == f"http://127.0.0.1:{am.port}"
        posted = time.monotonic()
        am.post_alerts([make_alert(labels, {"summary": "demo is down"})])
        path, headers, body = received.get(timeout=5)
        delay = time.monotonic() - posted

        assert [a["labels"] for a in am.alerts()] == [labels]

    assert delay < 3
    assert path == "/hook"
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["User-Agent"].startswith("Alertmanager/")
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert [alert["labels"] for alert in body["alerts"]] == [labels]
    assert body["alerts"][0]["annotations"] == {"summary": "demo is down"}


# --------------------------------------------------------------------------------------------- PostgreSQL


async def test_postgres_answers_survives_stop_start_and_kill(tmp_path: Path) -> None:
    with start_postgres(tmp_path) as pg:
        assert pg.dsn == f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT 1") == 1
            await conn.execute("CREATE TABLE t (v int); INSERT INTO t VALUES (7)")
        finally:
            await conn.close()

        first_pid, port = pg.pid, pg.port
        assert pg.stop() == 0
        assert not pg.running
        pg.start()
        assert (pg.port, pg.running) == (port, True)
        assert pg.pid != first_pid
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT v FROM t") == 7
        finally:
            await conn.close()

        pg.kill()  # postmaster and backends, like a crash
        pg.start()  # crash recovery on the same data directory
        conn = await asyncpg.connect(pg.dsn)
        try:
            assert await conn.fetchval("SELECT v FROM t") == 7
        finally:
            await conn.close()


# --------------------------------------------------------------------------------------------- Redis


async def test_redis_answers_ping_and_restarts_on_the_same_port(tmp_path: Path) -> None:
    with start_redis(tmp_path) as server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        for _ in range(2):
            client = aioredis.from_url(server.url)
            try:
                assert await client.ping() is True
            finally:
                await client.aclose()
            port = server.port
            server.stop()
            assert not server.running
            server.start()
            assert server.port == port


# --------------------------------------------------------------------------------------------- Prometheus


def test_prometheus_scrapes_a_local_target_and_evaluates_rules(tmp_path: Path) -> None:
    class Metrics(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = b"# TYPE demo_metric gauge\ndemo_metric 42\n"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    rules = """
    groups:
      - name: demo
        rules:
          - alert: DemoHigh
            expr: demo_metric > 40
    """
    with http_server(Metrics) as base:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": "demo", "static_configs": [{"targets": [base.removeprefix("http://")]}]}
            ],
        }
        with start_prometheus(
            config, tmpdir=tmp_path, rule_files={"demo.yml": textwrap.dedent(rules)}
        ) as prom:
            assert prom.url == f"http://127.0.0.1:{prom.port}"
            deadline = time.monotonic() + 15  # first scrape ~5-7 s after start: see Prometheus docstring
            value = alerts = None
            while time.monotonic() < deadline and not (value and alerts):
                result = prom.query("demo_metric")["data"]["result"]
                value = result[0]["value"][1] if result else None
                alerts = prom.query('ALERTS{alertname="DemoHigh"}')["data"]["result"]
                time.sleep(0.1)
            assert value == "42"
            assert alerts
            assert alerts[0]["metric"]["alertstate"] in ("pending", "firing")
