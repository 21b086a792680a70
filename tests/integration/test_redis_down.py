"""Redis (coordination) down: the service stays ready and keeps taking alerts, says coordination is down in
``/readyz`` and in ``remediator_dependency_up``, and refuses automatic actions (``coordination_unavailable``)
until Redis is back."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import eventually
from tests.integration.test_remediation_flow import AUTH, alert, app_for, post, settled, write_rule
from tests.support import procs
from tests.support.kube_standin import KubeStandin


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Redis]:
    with procs.start_redis(tmp_path_factory.mktemp("redis-down")) as server:
        yield server


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.3) as kube:
        kube.add_deployment("shop", "coordinator", replicas=3)
        kube.set_deployment_pods_state("shop", "coordinator", "crashloop")  # a restart would be safe
        kube.clear_requests()
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace="shop")


async def readiness(client: Any) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json()


async def dependency_up(client: Any) -> dict[str, float]:
    text = await (await client.get("/metrics")).text()
    return {
        sample.labels["dependency"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "remediator_dependency_up"
        for sample in family.samples
    }


async def test_with_redis_stopped_the_service_stays_ready_stores_alerts_and_refuses_actions(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any, redis: procs.Redis
) -> None:
    kube, kubeconfig = cluster
    write_rule(rules_dir)
    client = await aiohttp_client(app_for(make_settings, kubeconfig, redis_url=redis.url))
    assert await readiness(client) == (
        200,
        {
            "status": "ok",
            "store": "ok",
            "coordination": "ok",
            "ready": True,
            "checks": {"store": "ok", "coordination": "ok"},
        },
    )
    assert await dependency_up(client) == {"store": 1.0, "coordination": 1.0}

    redis.stop()
    try:
        status, body = await readiness(client)
        assert status == 200, "a Redis outage never takes intake off the Service"
        assert (body["status"], body["store"], body["coordination"]) == ("ok", "ok", "unavailable")
        assert await dependency_up(client) == {"store": 1.0, "coordination": 0.0}

        await post(client, alert())  # asserts 200: stored while Redis is down
        [incident] = await settled(client)
        detail = await (await client.get(f"/v1/incidents/{incident['id']}", headers=AUTH)).json()
        assert [a["fingerprint"] for a in detail["alerts"]] == ["coord"]
        assert incident["state"] == "escalated" and "coordination unavailable" in incident["reason"]
        [restart] = [a for a in detail["actions"] if a["action"] == "kube.rollout_restart"]
        assert (restart["status"], restart["guard"]) == ("blocked", "coordination_unavailable")
        assert kube.writes() == [], "nothing automatic ran without shared guards"
    finally:
        redis.start()

    await eventually(lambda: _coordination_ok(client))
    assert await dependency_up(client) == {"store": 1.0, "coordination": 1.0}


async def _coordination_ok(client: Any) -> bool:
    status, body = await readiness(client)
    return status == 200 and body["coordination"] == "ok"
