"""The one-command demo (``scripts/demo.sh``), run as a user would, non-interactively, on free ports.

Real processes throughout: the demo exporter, Prometheus, Alertmanager and ``remediator serve``. Breaking the
demo coordinator must open an incident that an approver sees in the console within 60 s, and stopping the demo
(``stop``, or Ctrl-C in the foreground) must leave no process behind.
"""

from __future__ import annotations

import contextlib
import http.cookiejar
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support import procs

DEMO = ROOT / "scripts" / "demo.sh"
INCIDENT_WITHIN_S = 60.0  # issue 17, done-when 6


@dataclass
class Demo:
    """A demo started by ``scripts/demo.sh`` in its own state directory."""

    state_dir: Path
    env: dict[str, str]
    ports: dict[str, int]

    def run(self, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(DEMO), *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    @property
    def service(self) -> str:
        return f"http://127.0.0.1:{self.ports['SERVICE']}"

    @property
    def approver_token(self) -> str:
        return (self.state_dir / "approver-token").read_text().strip()


def demo_env(state_dir: Path) -> tuple[dict[str, str], dict[str, int]]:
    ports = {name: procs.free_port() for name in ("SERVICE", "PROMETHEUS", "ALERTMANAGER", "EXPORTER")}
    env = {key: value for key, value in os.environ.items() if not key.startswith(("DEMO_", "REMEDIATOR_"))}
    env["DEMO_DIR"] = str(state_dir)
    env.update({f"DEMO_{name}_PORT": str(port) for name, port in ports.items()})
    return env, ports


def demo_processes(state_dir: Path) -> list[str]:
    """Every live (non-zombie) process started by the demo of ``state_dir``, as ``pid cmdline``.

    The demo marks each process it starts with ``DEMO_STATE_DIR=<state dir>`` in its environment.
    """
    marker = f"DEMO_STATE_DIR={state_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append(f"{entry.name} {cmdline}")
    return found


def kill_leftovers(state_dir: Path) -> None:
    """Last resort after a failed test: SIGKILL what the demo left, by PID (never by name)."""
    for line in demo_processes(state_dir):
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(line.split()[0]), signal.SIGKILL)


def port_open(port: int) -> bool:
    try:
        procs.wait_for_port(procs.HOST, port, timeout=0.05)
    except TimeoutError:
        return False
    return True


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    state_dir = tmp_path_factory.mktemp("demo")
    env, ports = demo_env(state_dir)
    running = Demo(state_dir=state_dir, env=env, ports=ports)
    try:
        started = running.run("start", "--detach")
        assert started.returncode == 0, started.stdout + started.stderr
        yield running
    finally:
        running.run("stop")
        kill_leftovers(state_dir)


def _opener(jar: http.cookiejar.CookieJar | None = None) -> urllib.request.OpenerDirector:
    handlers: list[Any] = [urllib.request.ProxyHandler({})]
    if jar is not None:
        handlers.append(urllib.request.HTTPCookieProcessor(jar))
    return urllib.request.build_opener(*handlers)


def get_json(url: str, token: str) -> Any:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with _opener().open(request, timeout=5) as response:
        return json.loads(response.read())


def wait_for_incident(demo: Demo, rule: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = get_json(f"{demo.service}/v1/incidents?rule={rule}", demo.approver_token)["incidents"]
        if last:
            found: dict[str, Any] = last[0]
            return found
        time.sleep(0.25)
    log = (demo.state_dir / "logs" / "service.log").read_text()[-3000:]
    raise AssertionError(f"no {rule} incident within {timeout}s (last: {last!r}); service log tail:\n{log}")


def test_breaking_the_coordinator_shows_an_incident_in_the_console(demo: Demo) -> None:
    status = demo.run("status")
    assert status.returncode == 0, status.stdout + status.stderr
    assert "broken: nothing" in status.stdout
    assert get_json(f"{demo.service}/v1/incidents", demo.approver_token)["incidents"] == []

    broke = demo.run("break", "coordinator")
    assert broke.returncode == 0, broke.stderr
    assert "CoordinatorDown" in broke.stdout
    started = time.monotonic()
    incident = wait_for_incident(demo, "coordinator-api-outage", INCIDENT_WITHIN_S)
    print(f"break coordinator -> incident in the API after {time.monotonic() - started:.1f}s")
    assert incident["target"]["namespace"] == "aitbc"
    assert incident["target"]["name"] == "coordinator"

    detail = get_json(f"{demo.service}/v1/incidents/{incident['id']}", demo.approver_token)
    assert {alert["alert"]["labels"]["alertname"] for alert in detail["alerts"]} == {"CoordinatorDown"}
    # dry-run and no Kubernetes: nothing was applied to anything
    assert not [a for a in detail["actions"] if a["status"] in {"running", "succeeded", "failed"}]

    # The console, signed in with the approver token the demo generated, lists it and shows it.
    jar = http.cookiejar.CookieJar()
    browser = _opener(jar)
    form = urllib.parse.urlencode({"token": demo.approver_token}).encode()
    with browser.open(f"{demo.service}/ui/login", data=form, timeout=5) as response:  # 303 → /ui/
        listing = response.read().decode()
        assert response.url == f"{demo.service}/ui/"
    assert f"/ui/incidents/{incident['id']}" in listing
    with browser.open(f"{demo.service}/ui/incidents/{incident['id']}", timeout=5) as response:
        page = response.read().decode()
    assert "CoordinatorDown" in page
    assert "Coordinator API Outage" in page


def test_an_unknown_component_is_refused_by_name(demo: Demo) -> None:
    answer = demo.run("break", "mainframe")
    assert answer.returncode != 0
    assert "mainframe" in answer.stderr
    assert "coordinator" in answer.stderr  # the choices are named


def test_stop_leaves_no_process_and_frees_every_port(demo: Demo) -> None:
    assert len(demo_processes(demo.state_dir)) == 4, demo_processes(demo.state_dir)
    stopped = demo.run("stop", timeout=60)
    assert stopped.returncode == 0, stopped.stderr
    assert demo_processes(demo.state_dir) == []
    assert [name for name, port in demo.ports.items() if port_open(port)] == []
    assert demo.run("status").returncode != 0


def terminal_signals() -> None:
    """In the child: SIGINT and SIGTERM as a terminal's job gets them (default, unblocked), whatever the
    test process inherited (a shell started with SIGINT ignored cannot trap it)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


def test_ctrl_c_in_the_foreground_stops_everything(tmp_path: Path) -> None:
    env, ports = demo_env(tmp_path / "demo")
    shell = subprocess.Popen(
        [str(DEMO)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, as a terminal's foreground job
        preexec_fn=terminal_signals,  # noqa: PLW1509 -- only signal calls between fork and exec
    )
    lines: list[str] = []
    try:
        assert shell.stdout is not None
        for line in shell.stdout:
            lines.append(line)
            if "Ctrl-C stops everything" in line:
                break
        assert "Ctrl-C stops everything" in "".join(lines), "".join(lines)
        assert f"http://127.0.0.1:{ports['SERVICE']}/ui/" in "".join(lines)
        assert len(demo_processes(tmp_path / "demo")) == 4
        os.killpg(shell.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        rest, _ = shell.communicate(timeout=60)  # the script gives each of its 4 components 10 s to stop
        assert shell.returncode == 130, "".join(lines) + rest
        assert "demo: stopped" in rest
        assert demo_processes(tmp_path / "demo") == []
        assert [name for name, port in ports.items() if port_open(port)] == []
    finally:
        if shell.poll() is None:
            os.killpg(shell.pid, signal.SIGKILL)
            shell.wait()
        kill_leftovers(tmp_path / "demo")
