"""Network partition (issue 14, done-when 6) through the running service with the shipped network-partition
rule: the Kubernetes stand-in runs a 3-member blockchain-node group, a local HTTP server plays the nodes'
``/v1/peers`` and ``/v1/consensus``.

(a) the restart brings the peers back but consensus height stalls → not mitigated, escalated, the reason names
    ``consensus.height``; (b) one of the three pods unready → the restart is refused by the blast radius
    (quorum 2 needs 3 ready) and the incident is escalated, nothing written to the cluster.

The rule is copied with its node URLs pointed at the local server and its DNS dependency probe at a name that
resolves here (``localize``); the verify window is shortened from 3 min to 2 s so the file runs in seconds.
Consensus height comes from the node API (``consensus.height``, what ``verify.advances`` names); no Prometheus
runs, so the rule's ``height`` query is skipped and plays no part in either case."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from service.app import create_app
from tests.integration.test_scenarios import NS, fire, http_server, localize, settings_for
from tests.support.kube_standin import KubeStandin

NODE = "blockchain-node"


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[tuple[KubeStandin, Path]]:
    async with KubeStandin(rollout_delay=0.2) as kube:
        kube.add_deployment(
            NS, NODE, replicas=3, containers=[{"name": NODE, "image": "aitbc/blockchain-node:1"}]
        )
        yield kube, kube.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)


def restarts(kube: KubeStandin) -> list[Any]:
    return [r for r in kube.writes() if "restartedAt" in json.dumps(r.body)]


async def partitioned_service(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, kube: KubeStandin, kubeconfig: Path, height: int
) -> tuple[Any, Any]:
    """The service with the localized rule, and the node server: one peer until the restart, then three;
    consensus height stuck at ``height``."""
    node = await http_server(
        {
            "/v1/peers": lambda: (200, [{"id": f"n{i}"} for i in range(3 if restarts(kube) else 1)]),
            "/v1/consensus": lambda: (200, {"height": height}),
        }
    )
    localize(
        rules_dir,
        "network-partition",
        {
            "http://blockchain-node.{{ target.namespace }}:8080/v1/peers": str(node.make_url("/v1/peers")),
            "http://blockchain-node.{{ target.namespace }}:8080/v1/consensus": str(
                node.make_url("/v1/consensus")
            ),
            'name: "blockchain-node.{{ target.namespace }}.svc.cluster.local"': "name: localhost",
            "within: 3m": "within: 2s",  # shortened: the stalled height must outlast the window in this test
        },
    )
    client = await aiohttp_client(create_app(settings_for(make_settings, kubeconfig)))
    return client, node


async def test_peers_recover_but_a_stalled_consensus_height_is_not_mitigated_and_is_escalated(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    client, node = await partitioned_service(aiohttp_client, make_settings, rules_dir, kube, kubeconfig, 1200)
    try:
        detail = await fire(client, "BlockchainPeerCountLow")
    finally:
        await node.close()
    assert len(restarts(kube)) == 1, "the restart ran once"
    assert detail["state"] == "escalated" and detail["mitigated_at"] is None
    assert "consensus.height did not advance: 1200 → 1200" in detail["reason"]
    [restart] = [a for a in detail["actions"] if a["action"] == "kube.rollout_restart"]
    assert restart["status"] == "succeeded"
    kinds = [e["kind"] for e in detail["timeline"]]
    assert "incident.mitigated" not in kinds
    [verification] = [r for r in detail["rounds"] if r["phase"] == "verification"]  # recorded as evidence
    by_id = {f["id"]: f for f in verification["findings"]}
    assert by_id["peers"]["status"] == "ok" and by_id["peers"]["facts"]["peers"] == 3, "the peers did recover"
    assert by_id["consensus"]["facts"]["height"] == 1200
    assert by_id["advances"]["status"] == "failed"


async def test_one_unready_node_of_three_blocks_the_restart_with_blast_radius(
    aiohttp_client: Any, make_settings: Any, rules_dir: Path, cluster: Any
) -> None:
    kube, kubeconfig = cluster
    kube.set_pod_state(NS, sorted(p["metadata"]["name"] for p in kube.pods_of(NS, NODE))[0], "unready")
    client, node = await partitioned_service(aiohttp_client, make_settings, rules_dir, kube, kubeconfig, 1200)
    try:
        detail = await fire(client, "BlockchainPeerCountLow")
    finally:
        await node.close()
    sentence = (
        "blockchain-node: 2 of 3 pods ready; quorum 2 needs 3 ready before a rolling restart takes one down"
    )
    assert kube.writes() == [], "nothing was written to the cluster"
    assert detail["state"] == "escalated"
    [blocked] = [a for a in detail["actions"] if a["status"] == "blocked"]
    assert (blocked["action"], blocked["guard"], blocked["reason"]) == (
        "kube.rollout_restart",
        "blast_radius",
        sentence,
    )
    assert sentence in detail["reason"]
    assert [a["action"] for a in detail["actions"] if a["status"] == "awaiting_approval"] == [
        "kube.delete_pods"
    ]
