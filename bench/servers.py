"""The processes under test, each pinned to the server core: remediator (one, or replicas), the bare baseline,
ansible-rulebook.

Every process is started by us, in its own session, and stopped by its PID (never by name).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_CORE = "0"
LOAD_CORE = "1"
TOKEN = "bench-token"
#: Matches none of the load (alertname BenchLoad): the pipeline stores and marks each alert unmatched.
NO_MATCH_RULE = """\
name: bench-no-match
runbook: Benchmark
description: Matches no alert of the benchmark load.
owner: bench
reviewed: {today}
mttr_target: 5m
severity: warning
match:
  - alertname="NeverFiresInTheBenchmark"
target:
  kind: Deployment
  namespace: default
  name: "{{{{ labels.service }}}}"
diagnose:
  - {{id: pods, probe: kube.pods}}
"""
PEER_RULEBOOK = """\
- name: bench
  hosts: all
  sources:
    - alertmanager:
        host: 127.0.0.1
        port: {port}
  rules:
    - name: one condition that the load never meets
      condition: event.alert.labels.alertname == "NeverFiresInTheBenchmark"
      action:
        debug:
"""
PEER_VENV = Path(os.environ.get("BENCH_PEER_VENV", "/tmp/eda-venv"))


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with code {proc.returncode}")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as response:  # any answer means it listens
                response.read()
            return
        time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {timeout:g}s")


def wait_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"port {port}: the server exited with code {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} did not open within {timeout:g}s")


def peak_rss_mb(pid: int) -> float:
    """VmHWM of ``pid`` (its peak resident set), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_rss_mb(pid: int) -> float:
    """Current RSS of ``pid`` and its children (ansible-rulebook's JVM runs in-process via jpy)."""
    total = 0
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    for one in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{one}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total / 1024


@contextlib.contextmanager
def running(
    argv: list[str], *, env: Mapping[str, str] | None = None, log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``argv`` pinned to the server core; setpriv and taskset exec, so the PID is the server's, and the
    kernel kills it if the benchmark itself dies."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "KILL", "taskset", "-c", SERVER_CORE, *argv],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=REPO,
            start_new_session=True,
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def baseline(port: int, workdir: Path, *, uvloop: bool = False) -> Iterator[int]:
    argv = [sys.executable, "-m", "bench.baseline", str(port), *(["uvloop"] if uvloop else [])]
    with running(argv, log=workdir / "baseline.log") as proc:
        wait_port(port, proc)
        yield proc.pid


@contextlib.contextmanager
def remediator(
    port: int, store_url: str, rules_dir: Path, workdir: Path, *, extra_env: Mapping[str, str] | None = None
) -> Iterator[int]:
    env = {
        **(extra_env or {}),
        "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
        "REMEDIATOR_STORE_URL": store_url,
        "REMEDIATOR_RULES_DIR": str(rules_dir),
        "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
        "REMEDIATOR_LOG_FORMAT": "json",
        "REMEDIATOR_LOG_LEVEL": "warning",
    }
    argv = [sys.executable, "-m", "service", "serve"]
    with running(argv, env=env, log=workdir / "remediator.log") as proc:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc)
        yield proc.pid


@contextlib.contextmanager
def replicas(
    ports: list[int], store_url: str, rules_dir: Path, workdir: Path, redis_url: str
) -> Iterator[list[int]]:
    """Remediator replicas on one PostgreSQL database, coordinated through Redis (as HA runs), started at
    once, all on the server core; their PIDs."""
    with contextlib.ExitStack() as stack:
        pids = []
        for n, port in enumerate(ports):
            own = workdir / f"replica-{n}"
            own.mkdir(parents=True, exist_ok=True)
            env = {"REMEDIATOR_REDIS_URL": redis_url}
            pids.append(stack.enter_context(remediator(port, store_url, rules_dir, own, extra_env=env)))
        yield pids


@contextlib.contextmanager
def peer(port: int, workdir: Path) -> Iterator[int]:
    rulebook = workdir / "rulebook.yml"
    rulebook.write_text(PEER_RULEBOOK.format(port=port))
    inventory = workdir / "inventory.yml"
    inventory.write_text("all:\n  hosts:\n    localhost:\n      ansible_connection: local\n")
    argv = [
        str(PEER_VENV / "bin" / "ansible-rulebook"),
        "-r",
        str(rulebook),
        "-i",
        str(inventory),
        "-S",
        str(REPO / "bench" / "peer_sources"),
    ]
    env = {"PATH": f"{PEER_VENV / 'bin'}:{os.environ['PATH']}", "VIRTUAL_ENV": str(PEER_VENV)}
    with running(argv, env=env, log=workdir / "ansible-rulebook.log") as proc:
        wait_port(port, proc, timeout=120)
        yield proc.pid
