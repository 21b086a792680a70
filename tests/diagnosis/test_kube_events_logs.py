"""``kube.events`` and ``kube.logs`` through the real runner and the real Kubernetes client against the API
stand-in: Warning events of the target's own pods, ReplicaSets and Deployment (not of ``coordinator-db``),
old and Normal events left out; the log tail of the most-restarted pod, its previous container when it
crashloops, error lines counted and a password in the log redacted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from service.clients.hub import Clients
from service.diagnosis import runner
from service.diagnosis.kube import events, logs
from service.model import incidents
from service.model.rules import ProbeSpec
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin

NS = "shop"
TARGET = incidents.TargetRef(kind="Deployment", namespace=NS, name="coordinator")
REGISTRY = {p.name: p for p in (*events.PROBES, *logs.PROBES)}


@pytest.fixture
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(NS, "coordinator", replicas=3)
        started.add_deployment(NS, "coordinator-db", replicas=1)
        yield started


@pytest.fixture
async def clients(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[Clients]:
    async with kube_clients(standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)) as hub:
        yield hub


async def run(
    clients: Clients,
    probe: str,
    params: dict[str, Any] | None = None,
    *,
    target: incidents.TargetRef = TARGET,
) -> incidents.Finding:
    params = params or {}
    spec = ProbeSpec.model_validate({"id": probe.split(".")[1], "probe": probe, "with": params})
    [finding] = await runner.run_all(
        [runner.PlannedProbe(spec=spec, params=params)],
        registry=REGISTRY,
        target=target,
        clients=clients,
        limits=runner.Limits(probe_timeout_s=3.0),
    )
    return finding


def pod_names(standin: KubeStandin, deployment: str) -> list[str]:
    return [p["metadata"]["name"] for p in standin.pods_of(NS, deployment)]


def ago(**delta: float) -> str:
    return (datetime.now(UTC) - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def warn(standin: KubeStandin, kind: str, name: str, reason: str, count: int = 1, **extra: Any) -> None:
    standin.add_event(
        NS,
        involved_kind=kind,
        involved_name=name,
        reason=reason,
        message=f"{reason} on {name}",
        count=count,
        **extra,
    )


# ------------------------------------------------------------------------------------------- kube.events


async def test_warnings_of_the_targets_own_objects_are_counted_by_reason(
    clients: Clients, standin: KubeStandin
) -> None:
    first, second, _ = pod_names(standin, "coordinator")
    [replicaset] = [rs["metadata"]["name"] for rs in standin.replica_sets_of(NS, "coordinator")]
    warn(standin, "Pod", first, "BackOff", count=5)
    warn(standin, "Pod", second, "BackOff", count=3)
    warn(standin, "Pod", first, "Unhealthy", count=2)
    warn(standin, "ReplicaSet", replicaset, "FailedCreate")
    warn(standin, "Deployment", "coordinator", "ProgressDeadlineExceeded")
    warn(standin, "Pod", f"{replicaset}-zzzzz", "FailedMount")  # a pod of the target that is already gone

    finding = await run(clients, "kube.events")
    assert finding.status == "degraded"
    assert finding.facts["warnings"] == 6
    assert finding.facts["reasons"] == {
        "BackOff": 8,
        "Unhealthy": 2,
        "FailedCreate": 1,
        "ProgressDeadlineExceeded": 1,
        "FailedMount": 1,
    }
    assert finding.summary == "6 Warning events: BackOff×8, Unhealthy×2, FailedCreate×1, FailedMount×1"
    latest = {(e["object"], e["reason"]): e for e in finding.facts["latest"]}
    assert latest[(f"Pod/{first}", "BackOff")]["count"] == 5
    assert latest[(f"Pod/{first}", "BackOff")]["message"] == f"BackOff on {first}"
    assert f"ReplicaSet/{replicaset} FailedCreate (x1): FailedCreate on {replicaset}" in finding.evidence
    event_lists = [r for r in standin.requests if r.path.endswith("/events")]
    assert [r.query.get("fieldSelector") for r in event_lists] == ["type=Warning"]


async def test_warnings_of_coordinator_db_are_not_coordinators(
    clients: Clients, standin: KubeStandin
) -> None:
    [db_pod] = pod_names(standin, "coordinator-db")
    [db_replicaset] = [rs["metadata"]["name"] for rs in standin.replica_sets_of(NS, "coordinator-db")]
    assert db_pod.startswith("coordinator-")  # the trap: a sibling whose names start like the target's
    warn(standin, "Pod", db_pod, "BackOff", count=40)
    warn(standin, "ReplicaSet", db_replicaset, "FailedCreate")
    warn(standin, "Deployment", "coordinator-db", "ProgressDeadlineExceeded")
    warn(standin, "Pod", f"{db_replicaset}-zzzzz", "FailedMount")
    warn(standin, "Pod", pod_names(standin, "coordinator")[0], "Unhealthy")

    finding = await run(clients, "kube.events")
    assert finding.facts["reasons"] == {"Unhealthy": 1}
    assert finding.summary == "1 Warning events: Unhealthy×1"

    theirs = await run(clients, "kube.events", target=TARGET.model_copy(update={"name": "coordinator-db"}))
    assert theirs.facts["reasons"] == {
        "BackOff": 40,
        "FailedCreate": 1,
        "ProgressDeadlineExceeded": 1,
        "FailedMount": 1,
    }


async def test_a_broad_rule_selector_does_not_pull_in_other_deployments(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.add_deployment(NS, "web", replicas=1, labels={"app.kubernetes.io/part-of": "shop", "app": "web"})
    standin.add_deployment(NS, "api", replicas=1, labels={"app.kubernetes.io/part-of": "shop", "app": "api"})
    [web_pod], [api_pod] = pod_names(standin, "web"), pod_names(standin, "api")
    warn(standin, "Pod", web_pod, "BackOff")
    warn(standin, "Pod", api_pod, "Unhealthy")
    target = incidents.TargetRef(
        kind="Deployment", namespace=NS, name="web", selector="app.kubernetes.io/part-of=shop"
    )
    finding = await run(clients, "kube.events", target=target)
    assert finding.facts["reasons"] == {"BackOff": 1}


async def test_old_warnings_are_dropped_and_normal_events_ignored(
    clients: Clients, standin: KubeStandin
) -> None:
    pod = pod_names(standin, "coordinator")[0]
    warn(standin, "Pod", pod, "BackOff", last_timestamp=ago(hours=2))
    warn(standin, "Pod", pod, "Unhealthy", last_timestamp=ago(minutes=30))
    warn(standin, "Pod", pod, "Killing", type="Normal")
    warn(standin, "Pod", pod, "Pulled", type="Normal")

    default = await run(clients, "kube.events")  # since_s 900
    assert default.status == "ok"
    assert default.summary == "no Warning events"
    assert default.facts == {"warnings": 0, "reasons": {}, "latest": []}

    hour = await run(clients, "kube.events", {"since_s": 3600})
    assert hour.status == "degraded"
    assert hour.facts["reasons"] == {"Unhealthy": 1}


def test_normal_events_are_ignored_even_when_the_api_returns_them() -> None:
    now = datetime.now(UTC)
    listed = [
        {
            "type": "Normal",
            "reason": "Pulled",
            "involvedObject": {"kind": "Pod", "name": "coordinator-abc-12345"},
            "lastTimestamp": now.isoformat(),
        },
        {
            "type": "Warning",
            "reason": "BackOff",
            "involvedObject": {"kind": "Pod", "name": "coordinator-abc-12345"},
            "eventTime": now.isoformat(),  # events.k8s.io style: no lastTimestamp
            "count": 4,
        },
    ]
    mine = events.owned("coordinator", replicasets={"coordinator-abc"})
    observation = events.summarize(listed, mine, now=now, since_s=60, limit=20)
    assert observation.facts["reasons"] == {"BackOff": 4}


async def test_secrets_in_event_messages_are_redacted_in_the_facts_too(
    clients: Clients, standin: KubeStandin
) -> None:
    pod = pod_names(standin, "coordinator")[0]
    standin.add_event(
        NS,
        involved_kind="Pod",
        involved_name=pod,
        reason="Unhealthy",
        message="Liveness probe failed: GET http://10.0.0.7:8080/health?token=s3cr3t-t0ken: 503",
    )
    finding = await run(clients, "kube.events")
    [latest] = finding.facts["latest"]
    assert latest["message"] == "Liveness probe failed: GET http://10.0.0.7:8080/health?token=[REDACTED] 503"
    assert "s3cr3t" not in finding.evidence


async def test_the_latest_are_limited(clients: Clients, standin: KubeStandin) -> None:
    pod = pod_names(standin, "coordinator")[0]
    for minutes, reason in ((9, "A"), (1, "B"), (5, "C")):
        warn(standin, "Pod", pod, reason, last_timestamp=ago(minutes=minutes))
    finding = await run(clients, "kube.events", {"limit": 2})
    assert finding.facts["warnings"] == 3
    assert [e["reason"] for e in finding.facts["latest"]] == ["B", "C"]  # newest first


# ------------------------------------------------------------------------------------------- kube.logs

CRASH_LOG = (
    "2024-05-01T03:00:00Z INFO starting coordinator\n"
    "2024-05-01T03:00:01Z INFO connecting to postgres://coordinator@db:5432/shop password=hunter2\n"
    "2024-05-01T03:00:02Z ERROR could not connect to the database: connection refused\n"
    "Traceback (most recent call last):\n"
    '  File "/app/main.py", line 12, in <module>\n'
    "ConnectionRefusedError: [Errno 111] Connection refused\n"
)


async def test_the_previous_container_of_the_most_restarted_crashlooping_pod(
    clients: Clients, standin: KubeStandin
) -> None:
    standin.set_deployment_pods_state(NS, "coordinator", "crashloop")
    worst = pod_names(standin, "coordinator")[1]
    standin.set_pod_state(NS, worst, "crashloop", restarts=9)
    for pod in pod_names(standin, "coordinator"):
        standin.set_logs(NS, pod, "2024-05-01T03:00:05Z INFO starting coordinator\n")  # the new instance
    standin.set_logs(NS, worst, CRASH_LOG, previous=True)

    finding = await run(clients, "kube.logs")
    assert finding.status == "degraded"
    assert finding.facts == {
        "pod": worst,
        "container": "coordinator",
        "previous": True,
        "lines": 6,
        "error_lines": 2,
    }
    assert finding.summary == (
        f"6 lines from previous container coordinator of {worst}, 2 with errors; "
        "last: Traceback (most recent call last):"
    )
    assert finding.evidence == CRASH_LOG.replace("password=hunter2", "password=[REDACTED]")
    assert "hunter2" not in finding.evidence
    [log_request] = [r for r in standin.requests if r.path.endswith("/log")]
    assert log_request.path == f"/api/v1/namespaces/{NS}/pods/{worst}/log"
    assert log_request.query["previous"] == "True"
    assert log_request.query["tailLines"] == "100"


async def test_a_healthy_pod_gives_its_current_log(clients: Clients, standin: KubeStandin) -> None:
    pod = pod_names(standin, "coordinator")[0]
    standin.set_logs(NS, pod, '{"level":"info","msg":"ready","token":"abc123xyz"}\n')
    finding = await run(clients, "kube.logs", {"tail_lines": 20})
    assert finding.status == "ok"
    assert finding.facts == {
        "pod": pod,
        "container": "coordinator",
        "previous": False,
        "lines": 1,
        "error_lines": 0,
    }
    assert finding.summary == f"1 lines from container coordinator of {pod}, 0 with errors"
    assert finding.evidence == '{"level":"info","msg":"ready","token":"[REDACTED]"}\n'


async def test_the_crashlooping_sidecar_is_read_not_the_healthy_first_container(
    clients: Clients, standin: KubeStandin
) -> None:
    containers = [{"name": "app", "image": "example/app:1"}, {"name": "proxy", "image": "example/proxy:1"}]
    standin.add_deployment(NS, "gateway", replicas=1, containers=containers)
    [pod] = pod_names(standin, "gateway")
    standin.set_pod_state(NS, pod, "crashloop", container="proxy", restarts=4)
    standin.set_logs(NS, pod, "app is fine\n", container="app")
    standin.set_logs(NS, pod, "FATAL proxy: bad upstream config\n", container="proxy", previous=True)
    target = TARGET.model_copy(update={"name": "gateway"})

    finding = await run(clients, "kube.logs", target=target)
    assert finding.status == "degraded"
    assert (finding.facts["container"], finding.facts["previous"]) == ("proxy", True)
    assert finding.evidence == "FATAL proxy: bad upstream config\n"

    chosen = await run(clients, "kube.logs", {"container": "app"}, target=target)
    assert chosen.status == "ok"
    assert (chosen.facts["container"], chosen.facts["previous"]) == ("app", False)
    assert chosen.evidence == "app is fine\n"


async def test_a_long_log_keeps_its_last_lines_as_evidence(clients: Clients, standin: KubeStandin) -> None:
    pod = pod_names(standin, "coordinator")[0]
    body = "".join(
        f"2024-05-01T03:00:{i % 60:02d}Z INFO request {i} served in 12ms by worker 7\n" for i in range(99)
    )
    standin.set_logs(NS, pod, body + "FATAL out of file descriptors\n")
    finding = await run(clients, "kube.logs")
    assert finding.facts["lines"] == 100
    assert finding.evidence.endswith("request 98 served in 12ms by worker 7\nFATAL out of file descriptors\n")
    assert finding.evidence.startswith("…[")
    assert "earlier lines not shown]\n" in finding.evidence
    assert len(finding.evidence.encode()) <= 4096


async def test_a_target_without_pods_is_skipped(clients: Clients, standin: KubeStandin) -> None:
    standin.add_deployment(NS, "idle", replicas=0)
    finding = await run(clients, "kube.logs", target=TARGET.model_copy(update={"name": "idle"}))
    assert finding.status == "skipped"
    assert finding.summary == "no pods match app.kubernetes.io/name=idle"


async def test_a_bad_container_name_is_refused_before_any_request(
    clients: Clients, standin: KubeStandin
) -> None:
    finding = await run(clients, "kube.logs", {"container": "../../etc/passwd"})
    assert finding.status == "error"
    assert finding.summary.startswith(
        "bad params: container: Value error, '../../etc/passwd' is not a valid DNS-1123"
    )
    assert standin.requests == []


async def test_an_unknown_container_is_an_error_with_the_apis_words(
    clients: Clients, standin: KubeStandin
) -> None:
    pod = pod_names(standin, "coordinator")[0]  # no restarts anywhere: the first pod
    finding = await run(clients, "kube.logs", {"container": "sidecar"})
    assert finding.status == "error"
    assert finding.summary == (
        f"Kubernetes API 400 (logs shop/{pod} -c sidecar): container sidecar is not valid for pod {pod}"
    )
