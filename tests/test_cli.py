"""The ``remediator`` command line: rules lint, settings from flags and environment, replay, incidents."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from service import cli, errors
from service.app import create_app
from service.settings import Settings
from tests.conftest import AM_FIXTURES, ROOT, TOKEN, eventually
from tests.support import procs

BROKEN = {
    "unknown-field.yaml": """\
name: unknown-field
runbook: Unknown Field
mttr_target: 2m
match: ['alertname="A"']
target: {kind: Deployment, namespace: default, name: a}
colour: red
""",
    "bad-matcher.yaml": """\
name: bad-matcher
runbook: Bad Matcher
mttr_target: 2m
match:
  - alertname=="A"
target: {kind: Deployment, namespace: default, name: a}
""",
    "bad-regex.yaml": """\
name: bad-regex
runbook: Bad Regex
mttr_target: 2m
match:
  - alertname=~"Coord(inator"
target: {kind: Deployment, namespace: default, name: a}
""",
    "bad-template.yaml": """\
name: bad-template
runbook: Bad Template
mttr_target: 2m
match: ['alertname="A"']
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('x') "
  name: a
""",
    "unknown-names.yaml": """\
name: unknown-names
runbook: Unknown Names
mttr_target: 2m
match: ['alertname="A"']
target: {kind: Deployment, namespace: default, name: a}
diagnose:
  - {id: pods, probe: kube.podz}
remediate:
  - action: kube.reboot_cluster
    safety: safe
""",
}


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "service", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        check=False,
    )


def test_rules_lint_reports_every_broken_rule_with_file_and_line(tmp_path: Path) -> None:
    for name, text in BROKEN.items():
        (tmp_path / name).write_text(text)
    result = run_cli("rules", "lint", str(tmp_path))
    assert result.returncode == 1
    lines = result.stdout.splitlines()

    def reported(file: str, line: int, *words: str) -> bool:
        prefix = f"{tmp_path / file}:{line}: error:"
        return any(text.startswith(prefix) and all(w in text for w in words) for text in lines)

    assert reported("unknown-field.yaml", 6, "colour"), lines
    assert reported("bad-matcher.yaml", 5, "matcher"), lines
    assert reported("bad-regex.yaml", 5, "regex"), lines
    assert reported("bad-template.yaml", 7), lines
    assert reported("unknown-names.yaml", 7, "kube.podz"), lines
    assert reported("unknown-names.yaml", 9, "kube.reboot_cluster"), lines


def test_rules_lint_checks_probe_params_against_each_probe(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("""\
name: params
runbook: Params
mttr_target: 2m
match: ['alertname="A"']
target: {kind: Deployment, namespace: default, name: a}
diagnose:
  - {id: db, probe: tcp.connect, with: {host: postgresql, port: not-a-port}}
  - id: health
    probe: http.get
    with:
      url: "http://{{ target.name }}.{{ target.namespace }}:8011/v1/health"
      expect_statuz: 200
  - {id: api, probe: http.get, with: {url: "http://x/{{ labels.path }}"}}
  - {id: pods, probe: kube.pods, with: {selector: "app=x; rm -rf /"}}
""")
    result = run_cli("rules", "lint", str(tmp_path))
    assert result.returncode == 1
    out = result.stdout
    file = tmp_path / "params.yaml"
    assert f"{file}:7: error: diagnose[0].with.port: bad params for tcp.connect: Input should be" in out, out
    assert (
        f"{file}:12: error: diagnose[1].with.expect_statuz: bad params for http.get: Extra inputs" in out
    ), out
    assert f"{file}:14: error: diagnose[3].with.selector: bad params for kube.pods: Value error" in out, out
    assert ":13:" not in out, "a templated url is checked when it is rendered, not at lint"


ACTION_PARAMS = """\
name: action-params
runbook: Action Params
mttr_target: 2m
match: ['alertname="A"']
target: {kind: Deployment, namespace: default, name: a}
remediate:
  - action: kube.scale
    safety: safe
    with: {replicas: many, max: 5}
  - action: kube.rollout_restart
    safety: safe
    with: {allow_single_replicas: true}
  - {action: kube.scale, safety: safe, with: {replicas: "{{ labels.replicas }}", max: 5}}
"""


def test_rules_lint_checks_action_params_against_each_action(tmp_path: Path) -> None:
    (tmp_path / "action-params.yaml").write_text(ACTION_PARAMS)
    result = run_cli("rules", "lint", str(tmp_path))
    assert result.returncode == 1
    out = result.stdout
    file = tmp_path / "action-params.yaml"
    assert (
        f"{file}:9: error: remediate[0].with.replicas: bad params for kube.scale: Input should be" in out
    ), out
    assert (
        f"{file}:12: error: remediate[1].with.allow_single_replicas: bad params for kube.rollout_restart: Extra"
        in out
    ), out
    assert ":13:" not in out, "a templated value is checked when it is rendered, not at lint"


def test_serve_refuses_bad_action_params_with_their_location(tmp_path: Path) -> None:
    (tmp_path / "action-params.yaml").write_text(ACTION_PARAMS)
    result = run_cli(
        "serve",
        "--rules-dir",
        str(tmp_path),
        "--store-url",
        f"sqlite:///{tmp_path}/x.db",
        "--listen",
        "127.0.0.1:18082",
    )
    assert result.returncode == 1
    assert (
        "action-params.yaml:9: error: remediate[0].with.replicas: bad params for kube.scale" in result.stderr
    )
    assert "action-params.yaml:12: error: remediate[1].with.allow_single_replicas" in result.stderr


def test_shipped_rules_lint_clean() -> None:
    result = run_cli("rules", "lint", str(ROOT / "rules"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("ok:")


def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    result = run_cli(
        "serve",
        "--listen",
        "0.0.0.0:18080",
        "--store-url",
        f"sqlite:///{tmp_path}/x.db",
        env={"REMEDIATOR_WEBHOOK_TOKEN": ""},
    )
    assert result.returncode != 0
    assert "REMEDIATOR_WEBHOOK_TOKEN" in result.stderr


SHARED = "shared-token-Zq81"


def test_an_approver_token_equal_to_the_webhook_token_is_refused(tmp_path: Path) -> None:
    """Whoever can read Alertmanager's configuration could otherwise approve actions."""
    with pytest.raises(errors.ConfigError) as refused:
        Settings(webhook_token=SHARED, approver_tokens=f"alice=own-token,bob={SHARED}")
    message = str(refused.value)
    assert "REMEDIATOR_APPROVER_TOKENS" in message and "bob" in message
    assert SHARED not in message and "alice" not in message
    Settings(webhook_token=SHARED, approver_tokens="alice=own-token")  # tokens of their own: fine
    result = run_cli(
        "serve",
        "--store-url",
        f"sqlite:///{tmp_path}/x.db",
        env={"REMEDIATOR_WEBHOOK_TOKEN": SHARED, "REMEDIATOR_APPROVER_TOKENS": f"bob={SHARED}"},
    )
    assert result.returncode == 1
    assert "REMEDIATOR_APPROVER_TOKENS" in result.stderr and "bob" in result.stderr
    assert SHARED not in result.stderr + result.stdout


def test_serve_closes_a_connection_that_sends_no_request_within_the_header_timeout(
    tmp_path: Path, rules_dir: Path
) -> None:
    """``remediator serve`` (web.run_app, whose own keep-alive default is 75 s) applies the setting."""
    port = procs.free_port()
    service = procs.Proc(
        [sys.executable, "-m", "service", "serve", "--header-timeout-s", "0.5"],
        log_path=tmp_path / "serve.log",
        port=port,
        workdir=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "REMEDIATOR_LISTEN": f"127.0.0.1:{port}",
            "REMEDIATOR_STORE_URL": f"sqlite:///{tmp_path}/serve.db",
            "REMEDIATOR_RULES_DIR": str(rules_dir),
            "REMEDIATOR_WEBHOOK_TOKEN": TOKEN,
            "REMEDIATOR_LOG_LEVEL": "warning",
        },
    )
    with service.start(), socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
        started = time.monotonic()
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # never the blank line that ends it
        assert idle.recv(1024) == b"", "closed without an answer"
        assert 0.3 < time.monotonic() - started < 5


def test_serve_refuses_broken_rules_with_their_location(tmp_path: Path) -> None:
    (tmp_path / "bad-regex.yaml").write_text(BROKEN["bad-regex.yaml"])
    result = run_cli(
        "serve",
        "--rules-dir",
        str(tmp_path),
        "--store-url",
        f"sqlite:///{tmp_path}/x.db",
        "--listen",
        "127.0.0.1:18081",
    )
    assert result.returncode == 1
    assert "bad-regex.yaml:5" in result.stderr


def test_flags_win_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REMEDIATOR_LISTEN", "127.0.0.1:9999")
    monkeypatch.setenv("REMEDIATOR_APPROVER_TOKENS", "alice=t1,bob=t2")
    args = cli.build_parser().parse_args(["serve", "--listen", "127.0.0.1:7000", "--workers", "3"])
    settings = cli.load_settings(args)
    assert settings.port == 7000 and settings.workers == 3
    assert set(settings.approver_tokens) == {"alice", "bob"}
    assert "t1" not in repr(settings)  # secrets never printed


def test_bad_setting_names_the_setting(tmp_path: Path) -> None:
    result = run_cli("migrate", "--store-url", "mysql://nope")
    assert result.returncode != 0
    assert "store_url" in result.stderr


def test_migrate_creates_a_fresh_store(tmp_path: Path) -> None:
    result = run_cli("migrate", "--store-url", f"sqlite:///{tmp_path}/fresh.db")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "fresh.db").exists()


async def test_replay_and_incidents_commands_against_a_running_service(make_settings: Any) -> None:
    server = TestServer(create_app(make_settings()), host="127.0.0.1")
    await server.start_server()
    try:
        url = str(server.make_url("/"))
        env = {"REMEDIATOR_WEBHOOK_TOKEN": TOKEN}
        first = await _in_thread(
            run_cli, "replay", str(AM_FIXTURES / "am-0.25-firing.json"), "--url", url, env=env
        )
        assert first.returncode == 0 and '"accepted": 1' in first.stdout
        second = await _in_thread(
            run_cli, "replay", str(AM_FIXTURES / "am-0.25-firing.json"), "--url", url, env=env
        )
        assert '"duplicates": 1' in second.stdout

        async def listed() -> str | None:
            result = await _in_thread(run_cli, "incidents", "list", "-o", "table", "--url", url, env=env)
            return result.stdout if "escalated" in result.stdout else None

        header, row = (await eventually(listed, timeout=20)).splitlines()
        assert header.split() == [
            "ID", "STATE", "SEVERITY", "LEVEL", "RULE", "TARGET", "CLOCK", "OPENED", "NOTE"
        ]  # fmt: skip
        assert "Deployment/default/checkout" in row and "high-error-rate" in row
        incident_id = row.split()[0]
        shown = await _in_thread(run_cli, "incidents", "show", incident_id, "--url", url, env=env)
        assert '"runbook": "High HTTP Error Rate"' in shown.stdout, "JSON when stdout is not a terminal"
        report = await _in_thread(run_cli, "incidents", "report", incident_id, "--url", url, env=env)
        assert report.returncode == 0 and report.stdout.startswith("#")
        assert "High HTTP Error Rate" in report.stdout
        denied = await _in_thread(
            run_cli, "incidents", "list", "--url", url, env={"REMEDIATOR_WEBHOOK_TOKEN": "x"}
        )
        assert denied.returncode == 1 and "401: invalid credentials" in denied.stderr
        assert denied.stdout == "" and "REMEDIATOR_WEBHOOK_TOKEN" in denied.stderr
    finally:
        await server.close()


async def _in_thread(*args: Any, **kwargs: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(*args, **kwargs)
