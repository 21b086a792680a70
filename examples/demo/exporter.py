"""A fake AITBC platform for the demo: Prometheus metrics you can break and fix (stdlib only).

It owns nothing but its own in-memory state, and never touches anything real. It serves, on one loopback port:

- ``/coordinator/metrics``: ``http_requests_total{status}`` (the coordinator's own counters). Broken
  ``coordinator``: the scrape answers 503, so Prometheus records ``up{job="coordinator"} == 0``
  (alert ``CoordinatorDown``). Broken ``errors``: one request in five is a 500 (``CoordinatorHighErrorRate``).
- ``/node/metrics``: ``blockchain_node_peers`` and ``blockchain_node_consensus_height`` (advances 1/s).
  Broken ``node``: no peers (``BlockchainPeerCountLow``) and the height stops.
- ``/postgres/metrics``: ``pg_up`` (postgres_exporter's). Broken ``database``: 0 (``PostgresDown``).
- ``/redis/metrics``: ``redis_up`` (redis_exporter's). Broken ``redis``: 0 (``RedisDown``).
- ``POST /control/break/<component>``, ``POST /control/fix/<component>``, ``GET /control/state``: the switch
  ``scripts/demo.sh break|fix`` uses. An unknown component is a 404 naming it and the known ones.

Usage::

    python examples/demo/exporter.py serve --port 9100
    python examples/demo/exporter.py break coordinator --port 9100
    python examples/demo/exporter.py fix coordinator --port 9100
    python examples/demo/exporter.py state --port 9100
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import urllib.error
import urllib.request
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMPONENTS = {
    "coordinator": "the coordinator API stops answering (its scrape fails): CoordinatorDown",
    "errors": "the coordinator answers 20 % of requests with 500: CoordinatorHighErrorRate",
    "node": "the blockchain node loses its peers and stops advancing: BlockchainPeerCountLow",
    "database": "PostgreSQL is down (pg_up 0): PostgresDown",
    "redis": "Redis is down (redis_up 0): RedisDown",
}
JOBS = ("coordinator", "node", "postgres", "redis")  # one scrape path each: /<job>/metrics
REQUESTS_PER_SECOND = 50  # simulated coordinator traffic
ERROR_SHARE = 5  # one request in this many fails while "errors" is broken


class Platform:
    """The fake platform's state: which components are broken, and counters derived from the clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.broken: set[str] = set()
        self._last = time.monotonic()
        self._ok = 0.0
        self._failed = 0.0
        self._height = 1000.0

    def _advance(self) -> None:
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        served = elapsed * REQUESTS_PER_SECOND
        if "errors" in self.broken:
            self._failed += served / ERROR_SHARE
            self._ok += served - served / ERROR_SHARE
        else:
            self._ok += served
        if "node" not in self.broken:
            self._height += elapsed

    def set(self, component: str, broken: bool) -> None:
        with self._lock:
            self._advance()
            (self.broken.add if broken else self.broken.discard)(component)

    def state(self) -> dict[str, object]:
        with self._lock:
            return {"broken": sorted(self.broken), "components": COMPONENTS}

    def metrics(self, job: str) -> str | None:
        """The exposition text of ``job``, or ``None`` when that job's scrape must fail."""
        with self._lock:
            self._advance()
            if job == "coordinator":
                if "coordinator" in self.broken:
                    return None
                return (
                    "# TYPE http_requests_total counter\n"
                    f'http_requests_total{{status="200"}} {int(self._ok)}\n'
                    f'http_requests_total{{status="500"}} {int(self._failed)}\n'
                )
            if job == "node":
                peers = 0 if "node" in self.broken else 8
                return (
                    "# TYPE blockchain_node_peers gauge\n"
                    f"blockchain_node_peers {peers}\n"
                    "# TYPE blockchain_node_consensus_height gauge\n"
                    f"blockchain_node_consensus_height {int(self._height)}\n"
                )
            if job == "postgres":
                return f"# TYPE pg_up gauge\npg_up {0 if 'database' in self.broken else 1}\n"
            if job == "redis":
                return f"# TYPE redis_up gauge\nredis_up {0 if 'redis' in self.broken else 1}\n"
        return ""


class Handler(BaseHTTPRequestHandler):
    """Metrics per job and the control endpoints; answers JSON errors, never a stack trace."""

    platform: Platform  # set on the subclass made by ``serve``
    server_version = "aitbc-demo-exporter"

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"exporter: {self.command} {self.path} {args[1] if len(args) > 1 else ''}\n")

    def _send(self, status: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _json(self, status: int, body: dict[str, object]) -> None:
        self._send(status, json.dumps(body) + "\n", "application/json")

    def do_GET(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["control", "state"]:
            self._json(HTTPStatus.OK, self.platform.state())
        elif len(parts) == 2 and parts[1] == "metrics" and parts[0] in JOBS:
            text = self.platform.metrics(parts[0])
            if text is None:
                self._send(HTTPStatus.SERVICE_UNAVAILABLE, "coordinator is down (demo)\n", "text/plain")
            else:
                self._send(HTTPStatus.OK, text, "text/plain; version=0.0.4")
        elif parts in (["metrics"], [""]):
            self._send(HTTPStatus.OK, f"# the demo platform: /{'|'.join(JOBS)}/metrics\n", "text/plain")
        else:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})

    def do_POST(self) -> None:
        parts = self.path.split("?")[0].strip("/").split("/")
        if len(parts) != 3 or parts[0] != "control" or parts[1] not in {"break", "fix"}:
            self._json(HTTPStatus.NOT_FOUND, {"error": f"no such path: {self.path}"})
            return
        verb, component = parts[1], parts[2]
        if component not in COMPONENTS:
            known = ", ".join(COMPONENTS)
            self._json(
                HTTPStatus.NOT_FOUND,
                {"error": f"unknown component {component!r}: one of {known}", "field": "component"},
            )
            return
        self.platform.set(component, broken=verb == "break")
        self._json(HTTPStatus.OK, {verb: component, "effect": COMPONENTS[component], **self.platform.state()})


def serve(host: str, port: int) -> None:
    handler = type("BoundHandler", (Handler,), {"platform": Platform()})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    print(f"exporter: listening on http://{host}:{port}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def control(port: int, verb: str, component: str | None) -> int:
    """``break``/``fix``/``state`` against the exporter on loopback ``port``; returns the exit code."""
    url = f"http://127.0.0.1:{port}"
    path = "/control/state" if verb == "state" else f"/control/{verb}/{component}"
    data = None if verb == "state" else b""
    request = urllib.request.Request(url + path, data=data)  # noqa: S310 - an http:// URL built here
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
    try:
        with opener.open(request, timeout=5) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"demo: {json.loads(exc.read()).get('error', exc.reason)}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(
            f"demo: the demo exporter at {url} does not answer ({exc}): is the demo running?", file=sys.stderr
        )
        return 1
    if verb == "state":
        broken = answer["broken"]
        print("broken: " + (", ".join(broken) if broken else "nothing"))
    else:
        effect = answer["effect"] if verb == "break" else "healthy again; its alerts resolve within ~10 s"
        print(f"{verb} {component}: {effect}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="exporter.py", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve the metrics and the control endpoints")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=9100)
    for verb in ("break", "fix"):
        one = sub.add_parser(verb, help=f"{verb} a component of the running exporter")
        one.add_argument("component", choices=sorted(COMPONENTS), help="what to " + verb)
        one.add_argument("--port", type=int, required=True, help="the exporter's loopback port")
    state = sub.add_parser("state", help="what is broken now")
    state.add_argument("--port", type=int, required=True, help="the exporter's loopback port")
    args = parser.parse_args(argv)
    if args.command == "serve":
        serve(args.host, args.port)
        return 0
    return control(args.port, args.command, getattr(args, "component", None))


if __name__ == "__main__":
    sys.exit(main())
