"""The engine's guard inputs and verification for issue 14, with real probes and actions: the shipped
network-partition rule against the Kubernetes stand-in and a local blockchain-node HTTP server (quorum in the
blast radius; consensus height must advance), and the shipped coordinator rule on a real SQLite store (an
open database-failure incident and a failed ``db`` probe block with guard ``dependency``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer

from service import registries
from service.clients.hub import Clients
from service.decision import plan as planning
from service.diagnosis import registry as probe_registry
from service.diagnosis import runner
from service.matching import templates
from service.matching.loader import CompiledRule, parse_rule
from service.model import alerts, incidents
from service.records import actions as journal
from service.records import schema, switches, windows
from service.records.coordination import LocalCoordination
from service.records.store import Store
from service.remediation import registry as action_registry
from service.remediation.engine import Engine, Policy, Prepared
from tests.conftest import ROOT
from tests.support.kube_clients import kube_clients
from tests.support.kube_standin import KubeStandin

NS = "default"
NODE = "blockchain-node"
QUORUM_SENTENCE = (
    "blockchain-node: 2 of 3 pods ready; quorum 2 needs 3 ready before a rolling restart takes one down"
)


class Node:
    """A blockchain node's HTTP API: ``/v1/peers`` and ``/v1/consensus`` answer what the test sets."""

    def __init__(self) -> None:
        self.peers = 3
        self.heights: Callable[[], int] = lambda: 1200

    async def start(self) -> TestServer:
        app = web.Application()
        app.router.add_get("/v1/peers", self._peers)
        app.router.add_get("/v1/consensus", self._consensus)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        return server

    async def _peers(self, _request: web.Request) -> web.Response:
        return web.json_response([{"id": i} for i in range(self.peers)])

    async def _consensus(self, _request: web.Request) -> web.Response:
        return web.json_response({"height": self.heights()})


def shipped(name: str, replacements: dict[str, str]) -> CompiledRule:
    text = (ROOT / "rules" / f"{name}.yaml").read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    return parse_rule(text, catalogue=registries.catalogue())


def prepared_for(engine: Engine, rule: CompiledRule, alertname: str) -> Prepared:
    alert = alert_named(alertname)
    context = templates.alert_context(alert, rule)
    target = templates.render_target(rule.target, context)
    return engine.prepare(rule, target, templates.with_target(context, target))


def alert_named(alertname: str) -> alerts.Alert:
    return alerts.Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": alertname, "namespace": NS},
            "startsAt": "2026-11-27T10:00:00Z",
            "fingerprint": alertname,
        }
    )


@pytest.fixture
async def standin() -> AsyncIterator[KubeStandin]:
    async with KubeStandin(rollout_delay=0.05) as started:
        started.add_deployment(NS, NODE, replicas=3)
        started.add_deployment(NS, "coordinator", replicas=2)
        yield started


@pytest.fixture
async def node() -> AsyncIterator[tuple[Node, TestServer]]:
    api = Node()
    server = await api.start()
    yield api, server
    await server.close()


@pytest.fixture
async def engine(standin: KubeStandin, tmp_path: Path) -> AsyncIterator[Engine]:
    store = Store.open(f"sqlite:///{tmp_path / 'engine.db'}")
    await store.migrate()
    kubeconfig = standin.write_kubeconfig(tmp_path / "kubeconfig", namespace=NS)
    async with kube_clients(kubeconfig) as hub:
        yield Engine(
            store=store,
            coordination=LocalCoordination(),
            actions=action_registry.actions(),
            probes=probe_registry.probes(),
            clients=Clients(http=hub.http, kube=hub.kube),
            policy=Policy(verify_interval_s=0.05),
            limits=runner.Limits(probe_timeout_s=2.0, deadline_s=5.0),
            owner="test",
        )
    await store.close()


def partition_rule(server: TestServer, *, within: str = "3m") -> CompiledRule:
    # the node's URLs point at the local server; ``within`` is shortened where a test waits for it to expire
    return shipped(
        "network-partition",
        {
            "http://blockchain-node.{{ target.namespace }}:8080/v1/peers": str(server.make_url("/v1/peers")),
            "http://blockchain-node.{{ target.namespace }}:8080/v1/consensus": str(
                server.make_url("/v1/consensus")
            ),
            "within: 3m": f"within: {within}",
        },
    )


def height(value: object) -> incidents.Finding:
    return incidents.Finding(id="consensus", probe="http.json", status="ok", facts={"height": value})


RESTART = planning.Step(0, "kube.rollout_restart", "safe", "planned")


# -- quorum in the blast radius ---------------------------------------------------------------------------


async def test_one_unready_consensus_pod_of_three_refuses_the_restart_with_blast_radius(
    engine: Engine, standin: KubeStandin, node: tuple[Node, TestServer]
) -> None:
    prepared = prepared_for(engine, partition_rule(node[1]), "BlockchainPeerCountLow")
    healthy = await engine.guards(prepared, truncated=0, now=time.time())
    assert healthy.blast_radius["kube.rollout_restart"] is None, "3 of 3 ready: quorum 2 allows a restart"

    first = sorted(p["metadata"]["name"] for p in standin.pods_of(NS, NODE))[0]
    standin.set_pod_state(NS, first, "unready")
    guards = await engine.guards(prepared, truncated=0, now=time.time())
    assert guards.blast_radius["kube.rollout_restart"] == QUORUM_SENTENCE
    found = [
        incidents.Finding(id="peers", probe="http.json", status="degraded", facts={"peers": 0}),
        incidents.Finding(
            id="netpol", probe="kube.networkpolicies", status="ok", facts={"ingress_allowed": True}
        ),
    ]
    result = planning.decide(
        prepared.rule, alert_named("BlockchainPeerCountLow"), found, guards, now=time.time()
    )
    assert result.apply is None and result.escalate
    assert [(s.action, s.guard, s.reason) for s in result.blocked] == [
        ("kube.rollout_restart", "blast_radius", QUORUM_SENTENCE)
    ]
    assert [s.action for s in result.proposals] == ["kube.delete_pods"]


async def test_a_restart_that_loses_quorum_between_preflight_and_run_is_refused_without_a_write(
    engine: Engine, standin: KubeStandin, node: tuple[Node, TestServer]
) -> None:
    prepared = prepared_for(engine, partition_rule(node[1]), "BlockchainPeerCountLow")
    assert (await engine.guards(prepared, truncated=0, now=time.time())).blast_radius[
        "kube.rollout_restart"
    ] is None
    first = sorted(p["metadata"]["name"] for p in standin.pods_of(NS, NODE))[0]
    standin.set_pod_state(NS, first, "unready")
    standin.clear_requests()
    status, outcome, reason = await engine.execute("inc-1", prepared, RESTART)
    assert (status, outcome, reason) == ("blocked", None, QUORUM_SENTENCE)
    assert standin.writes() == []


# -- consensus-aware verification -------------------------------------------------------------------------


async def test_verification_passes_when_peers_are_back_and_height_advances_past_the_diagnosis(
    engine: Engine, node: tuple[Node, TestServer]
) -> None:
    api, server = node
    sample = iter(range(1201, 2000))
    api.heights = lambda: next(sample)
    prepared = prepared_for(engine, partition_rule(server), "BlockchainPeerCountLow")
    passed, found = await engine.verify(prepared, RESTART, acted_on=[height(1200)])
    assert passed
    assert [f.id for f in found] == ["peers", "consensus", "advances"]
    assert found[2].status == "ok" and found[2].summary == "consensus.height advanced: 1200 → 1201"


async def test_peers_recovered_but_a_stalled_height_is_not_mitigated_and_says_why(
    engine: Engine, node: tuple[Node, TestServer]
) -> None:
    api, server = node
    api.heights = lambda: 1200
    prepared = prepared_for(engine, partition_rule(server, within="300ms"), "BlockchainConsensusStalled")
    started = time.monotonic()
    passed, found = await engine.verify(prepared, RESTART, acted_on=[height(1200)])
    assert not passed and time.monotonic() - started < 2
    assert found[0].id == "advances" and found[0].status == "failed"
    assert found[0].summary == "consensus.height did not advance: 1200 → 1200"
    assert {f.id: f.status for f in found[1:]} == {"peers": "ok", "consensus": "ok"}, "recorded too"
    assert found[0].facts == {"consensus.height": {"baseline": 1200.0, "last": 1200, "advanced": False}}


async def test_without_a_diagnosis_value_the_first_sample_is_the_baseline(
    engine: Engine, node: tuple[Node, TestServer]
) -> None:
    api, server = node
    prepared = prepared_for(engine, partition_rule(server, within="300ms"), "BlockchainPeerCountLow")
    api.heights = lambda: 1500
    passed, found = await engine.verify(prepared, RESTART, acted_on=[height(None)])
    assert not passed and found[0].summary == "consensus.height did not advance: 1500 → 1500"

    sample = iter([1500, 1500, 1502] + [1502] * 100)
    api.heights = lambda: next(sample)
    passed, found = await engine.verify(prepared, RESTART)
    assert passed and found[-1].summary == "consensus.height advanced: 1500 → 1502"


async def test_peers_still_missing_is_the_reason_even_when_height_stalls_too(
    engine: Engine, node: tuple[Node, TestServer]
) -> None:
    api, server = node
    api.peers = 1
    prepared = prepared_for(engine, partition_rule(server, within="200ms"), "BlockchainPeerCountLow")
    passed, found = await engine.verify(prepared, RESTART, acted_on=[height(1200)])
    assert not passed
    assert found[0].id == "peers" and found[0].status == "degraded"
    assert found[-1].id == "advances" and found[-1].status == "failed"


async def test_a_height_that_is_not_a_number_never_passes(
    engine: Engine, node: tuple[Node, TestServer]
) -> None:
    api, server = node
    api.heights = lambda: "1300"  # type: ignore[assignment, return-value]
    prepared = prepared_for(engine, partition_rule(server, within="200ms"), "BlockchainPeerCountLow")
    passed, found = await engine.verify(prepared, RESTART, acted_on=[height(1200)])
    assert not passed and found[0].summary == "consensus.height is not a number: 1300"


# -- dependencies -----------------------------------------------------------------------------------------


def coordinator_rule() -> CompiledRule:
    return shipped("coordinator-api-outage", {})


async def open_incident(
    engine: Engine, id_: str, rule: str, *, state: str = "escalated", ns: str = NS
) -> None:
    async with engine.store.write() as conn:
        await conn.execute(
            sa.insert(schema.incidents),
            [
                {
                    "id": id_,
                    "rule": rule,
                    "open_key": None if state == "resolved" else f"{rule}|{ns}|{id_}",
                    "target_kind": "Deployment",
                    "target_namespace": ns,
                    "target_name": "postgresql",
                    "target_valid": True,
                    "state": state,
                    "severity": "critical",
                    "runbook": "Database Failure",
                    "mttr_target_s": 180.0,
                    "escalation_level": 1,
                    "opened_at": 1000.0,
                    "updated_at": 1000.0,
                }
            ],
        )


def probe(id_: str, name: str, status: str, summary: str = "") -> incidents.Finding:
    return incidents.Finding(id=id_, probe=name, status=status, summary=summary)  # type: ignore[arg-type]


async def test_an_open_database_incident_in_the_namespace_blocks_the_coordinator_restart(
    engine: Engine,
) -> None:
    prepared = prepared_for(engine, coordinator_rule(), "CoordinatorDown")
    found = [
        probe("health", "http.get", "failed"),
        probe("db", "tcp.connect", "ok"),
        probe("redis", "redis.ping", "ok"),
    ]
    assert (await engine.guards(prepared, truncated=0, now=time.time(), found=found)).dependencies == {}

    await open_incident(engine, "01DONE", "database-failure", state="resolved")
    await open_incident(engine, "01SHOP", "database-failure", ns="shop")
    await open_incident(engine, "01CPU", "high-cpu-memory")
    assert (await engine.guards(prepared, truncated=0, now=time.time(), found=found)).dependencies == {}

    await open_incident(engine, "01DB", "database-failure")
    guards = await engine.guards(prepared, truncated=0, now=time.time(), found=found)
    assert guards.dependencies == {
        "database-failure": "database-failure incident 01DB is open in default (Deployment postgresql)"
    }
    result = planning.decide(prepared.rule, alert_named("CoordinatorDown"), found, guards, now=time.time())
    assert result.apply is None
    assert result.blocked[0].reason == (
        "dependency: database-failure incident 01DB is open in default (Deployment postgresql); "
        "restarting coordinator would not help"
    )


async def test_a_failed_or_errored_dependency_probe_blocks_and_a_skipped_one_does_not(engine: Engine) -> None:
    prepared = prepared_for(engine, coordinator_rule(), "CoordinatorDown")
    down = [probe("db", "tcp.connect", "failed", "TCP postgresql.default:5432: connection refused")]
    unknown = [probe("redis", "redis.ping", "error", "timeout after 2s")]
    skipped = [probe("redis", "redis.ping", "skipped", "Redis not configured")]
    now = time.time()
    assert (await engine.guards(prepared, truncated=0, now=now, found=down)).dependencies == {
        "db": "probe db (tcp.connect) failed: TCP postgresql.default:5432: connection refused"
    }
    assert (await engine.guards(prepared, truncated=0, now=now, found=unknown)).dependencies == {
        "redis": "probe redis (redis.ping) could not check its dependency: timeout after 2s"
    }
    assert (await engine.guards(prepared, truncated=0, now=now, found=skipped)).dependencies == {}


# -- the kill switch and maintenance windows: read once per interval, fresh before an action -------------


async def test_a_pause_committed_after_the_guards_read_still_stops_the_action(
    engine: Engine, standin: KubeStandin, node: tuple[Node, TestServer]
) -> None:
    prepared = prepared_for(engine, partition_rule(node[1]), "BlockchainPeerCountLow")
    assert not (await engine.guards(prepared, truncated=0, now=time.time())).paused
    await switches.set_paused(engine.store, True, by="alice", now=time.time())  # after the guards read it
    standin.clear_requests()
    status, outcome, reason = await engine.execute("inc-1", prepared, RESTART)
    assert (status, outcome, reason) == ("blocked", None, "automatic actions are paused (kill switch)")
    assert standin.writes() == []
    async with engine.store.read() as conn:
        [record] = await journal.of_incident(conn, "inc-1")
    assert (record["status"], record["guard"]) == ("blocked", "paused")


async def test_a_paused_reading_is_never_reused_so_resuming_acts_at_once(
    engine: Engine, node: tuple[Node, TestServer]
) -> None:
    prepared = prepared_for(engine, partition_rule(node[1]), "BlockchainPeerCountLow")
    await switches.set_paused(engine.store, True, by="alice", now=time.time())
    assert (await engine.guards(prepared, truncated=0, now=time.time())).paused
    await switches.set_paused(engine.store, False, by="alice", now=time.time())
    assert not (await engine.guards(prepared, truncated=0, now=time.time())).paused


async def test_a_window_opened_after_the_guards_read_still_stops_the_action(
    engine: Engine, standin: KubeStandin, node: tuple[Node, TestServer]
) -> None:
    prepared = prepared_for(engine, partition_rule(node[1]), "BlockchainPeerCountLow")
    now = time.time()
    assert (await engine.guards(prepared, truncated=0, now=now)).window is None
    window = await windows.open_window(
        engine.store, kind="namespace", value=NS, until=now + 600, by="bob", reason="upgrade", now=now
    )
    standin.clear_requests()
    status, _outcome, reason = await engine.execute("inc-1", prepared, RESTART)
    assert (status, reason) == ("blocked", window.sentence())
    assert standin.writes() == []
    assert (await engine.guards(prepared, truncated=0, now=time.time())).window == window.sentence()
