"""``/metrics`` after a scenario run through the live service, parsed with prometheus_client's own parser:
every answer timed by route pattern and code (a 401 and a 404 too), the process and Python series, the build,
what automation did (actions by outcome, guard refusals, probes), the kill switch as it is flipped and after
a restart, and an incident state that empties reading 0."""

from __future__ import annotations

import collections
import json
import platform
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

import service
from service.app import create_app
from tests.conftest import TOKEN, eventually, load_fixture
from tests.support.kube_standin import KubeStandin

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = {"Authorization": "Bearer alice-approves"}

RULE = """\
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match:
  - alertname="CoordinatorDown"
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: coordinator
diagnose:
  - {id: pods, probe: kube.pods}
remediate:
  - action: kube.rollout_restart
    safety: safe
    when: findings.pods.facts.crashlooping > 0
    cooldown: 10m
    verify: {probe: pods, within: 10s}
"""

Samples = dict[str, list[tuple[dict[str, str], float]]]


@pytest.fixture
async def kubeconfig(tmp_path: Path) -> AsyncIterator[Path]:
    """Two crashlooping Deployments on the Kubernetes stand-in, in namespaces shop and billing."""
    async with KubeStandin(rollout_delay=0.3) as kube:
        for namespace in ("shop", "billing"):
            kube.add_deployment(namespace, "coordinator", replicas=2)
            kube.set_deployment_pods_state(namespace, "coordinator", "crashloop")
        yield kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


def app_for(make_settings: Any, rules_dir: Path, kubeconfig: Path) -> Any:
    (rules_dir / "coordinator-api-outage.yaml").write_text(RULE)
    settings = make_settings(
        kubeconfig=kubeconfig,
        verify_interval_s=0.2,
        approver_tokens="alice=alice-approves",
        metrics_refresh_s=0.05,
    )
    return create_app(settings)


def alert(namespace: str, *, resolved: bool = False) -> str:
    payload = load_fixture("am-0.25-resolved.json" if resolved else "am-0.25-firing.json")
    payload["alerts"][0].update(
        labels={"alertname": "CoordinatorDown", "namespace": namespace},
        startsAt="2026-11-27T10:00:00Z",
        fingerprint=f"coord-{namespace}",
    )
    return json.dumps(payload)


async def post(client: Any, body: str) -> None:
    response = await client.post(
        "/v1/alerts", data=body, headers={**AUTH, "Content-Type": "application/json"}
    )
    assert response.status == 200


async def scrape(client: Any) -> Samples:
    """Every sample of ``/metrics`` by sample name (``…_total``, ``…_count``), with its labels."""
    response = await client.get("/metrics")
    assert response.status == 200
    samples: Samples = collections.defaultdict(list)
    for family in text_string_to_metric_families(await response.text()):
        for sample in family.samples:
            samples[sample.name].append((sample.labels, sample.value))
    return samples


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The value of the one sample ``name`` with exactly ``labels``; None when it is not exported."""
    found = [v for have, v in samples.get(name, []) if have == labels]
    return found[0] if found else None


async def reads(client: Any, name: str, expected: float, **labels: str) -> Samples:
    async def check() -> Samples | None:
        samples = await scrape(client)
        return samples if value(samples, name, **labels) == expected else None

    result: Samples = await eventually(check, timeout=30)
    return result


async def incident_in(client: Any, namespace: str, state: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        listed = await (await client.get("/v1/incidents", headers=AUTH)).json()
        return next(
            (i for i in listed["incidents"] if i["target"]["namespace"] == namespace and i["state"] == state),
            None,
        )

    found: dict[str, Any] = await eventually(check, timeout=30)
    return found


async def test_a_scenario_run_shows_every_metric_with_the_labels_it_produced(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, kubeconfig: Path
) -> None:
    client = await aiohttp_client(app_for(make_settings, rules_dir, kubeconfig))
    assert (await client.get("/v1/incidents")).status == 401
    assert (await client.get("/no/such/page")).status == 404
    assert (await client.get("/v1/incidents/no-such-incident", headers=AUTH)).status == 404
    before = await scrape(client)
    assert value(before, "remediator_kill_switch") == 0
    assert all(v == 0 for _, v in before["remediator_incidents"]) and before["remediator_incidents"]

    # a crashloop on shop: diagnosed, restarted, verified, mitigated
    await post(client, alert("shop"))
    mitigated = await incident_in(client, "shop", "mitigated")
    samples = await reads(client, "remediator_incidents", 1, state="mitigated")
    detail = await (await client.get(f"/v1/incidents/{mitigated['id']}", headers=AUTH)).json()
    [action] = detail["actions"]
    assert value(samples, "remediator_actions_total", action=action["action"], outcome=action["status"]) == 1
    assert value(samples, "remediator_actions_total", action="kube.rollout_restart", outcome="verified") == 1
    recorded = collections.Counter(
        (f["probe"], f["status"]) for round_ in detail["rounds"] for f in round_["findings"]
    )
    assert set(recorded) == {("kube.pods", "failed"), ("kube.pods", "ok")}, recorded
    for (probe, status), count in recorded.items():  # verification may sample more often than it records
        counted = value(samples, "remediator_probes_total", probe=probe, status=status)
        assert counted is not None and counted >= count, (probe, status, counted)

    # the kill switch: 0 → pause → 1; an alert on billing is refused by the guard "paused" → resume → 0
    assert (await client.post("/v1/pause", headers=ALICE)).status == 200
    assert value(await scrape(client), "remediator_kill_switch") == 1, "at once, not at the next count"
    await post(client, alert("billing"))
    refused = await incident_in(client, "billing", "escalated")
    [blocked] = (await (await client.get(f"/v1/incidents/{refused['id']}", headers=AUTH)).json())["actions"]
    assert (blocked["status"], blocked["guard"]) == ("blocked", "paused")
    samples = await reads(client, "remediator_guard_refusals_total", 1, guard="paused")
    assert value(samples, "remediator_actions_total", action="kube.rollout_restart", outcome="blocked") == 1
    assert value(samples, "remediator_kill_switch") == 1
    assert (await client.post("/v1/resume", headers=ALICE)).status == 200
    assert value(await scrape(client), "remediator_kill_switch") == 0

    # shop resolves: mitigated empties and reads 0 on the next count
    await post(client, alert("shop", resolved=True))
    samples = await reads(client, "remediator_incidents", 0, state="mitigated")
    assert value(samples, "remediator_incidents", state="resolved") == 1
    assert value(samples, "remediator_incidents", state="escalated") == 1

    # every answer timed, by route pattern and code; never the raw path
    timed = {
        (labels["route"], labels["code"])
        for labels, _ in samples["remediator_http_request_duration_seconds_count"]
    }
    for expected in [
        ("/v1/incidents", "401"),
        ("unmatched", "404"),
        ("/v1/incidents/{id}", "404"),
        ("/v1/incidents/{id}", "200"),
        ("/v1/alerts", "200"),
        ("/v1/pause", "200"),
        ("/v1/resume", "200"),
        ("/metrics", "200"),
    ]:
        assert expected in timed, (expected, sorted(timed))
    assert not [route for route, _ in timed if "no-such" in route or mitigated["id"] in route]
    alerts_timed = value(
        samples, "remediator_http_request_duration_seconds_count", route="/v1/alerts", code="200"
    )
    assert alerts_timed == 3, "one observation per answer"

    # the process, the Python runtime and the build
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"):
        assert samples[name] and samples[name][0][1] > 0, name
    assert value(samples, "python_info", **samples["python_info"][0][0]) == 1
    assert samples["python_gc_collections_total"]
    build = {"version": service.__version__, "python": platform.python_version()}
    assert value(samples, "remediator_build_info", **build) == 1


async def test_the_kill_switch_reads_1_after_a_restart_while_paused(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, kubeconfig: Path
) -> None:
    """The switch is kept in the store: a service started while it is on says so on its first scrape."""
    first = await aiohttp_client(app_for(make_settings, rules_dir, kubeconfig))
    assert (await first.post("/v1/pause", headers=ALICE)).status == 200
    await first.close()
    second = await aiohttp_client(app_for(make_settings, rules_dir, kubeconfig))
    assert value(await scrape(second), "remediator_kill_switch") == 1
    assert (await second.post("/v1/resume", headers=ALICE)).status == 200
    assert value(await scrape(second), "remediator_kill_switch") == 0
