"""The Helm chart (helm/remediator): renders, lints, validates against Kubernetes 1.30 and stays least-privilege;
keeps the SQLite store on a claim and never runs two pods on it; its values schema refuses unknown keys; its
`helm test` pod and its PrometheusRule work (the pod's script against a live server, the rules with promtool).

Rendering goes through helm_python (the Helm Go SDK; no cluster, ``lookup`` returns nothing), validation through
kubernetes_validate's offline schemas. Each values set is rendered once per session.
"""

from __future__ import annotations

import base64
import functools
import http.server
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "remediator"
KUBE_VERSION = "1.30"
RELEASE, NAMESPACE = "rem", "ops"

DEFAULT: dict[str, Any] = {}
MINIMAL: dict[str, Any] = {
    "watchNamespaces": ["shop"],
    "networkPolicy": {"enabled": False},
    "serviceAccount": {"create": False, "name": "remediator"},
    "secrets": {"existingSecret": "remediator-tokens"},
    "settings": {"log_format": "", "action_budget": "", "storm_brake": "", "workers": ""},
}
HA: dict[str, Any] = {
    "replicas": 3,
    "postgresql": {"existingSecret": "remediator-db", "existingSecretKey": "url"},
    "redis": {"url": "redis://:hunter2@redis.ops:6379/0"},
    "watchNamespaces": ["shop", "billing"],
    "serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}},
    "prometheusRule": {"enabled": True},
    "prometheusUrl": "http://prometheus.monitoring:9090",
    "publicUrl": "https://remediator.example.com",
    "approvalActions": {"deletePods": True, "expandPvc": True},
    "extraRules": {"custom.yaml": "name: custom\n"},
    "secrets": {
        "webhookToken": "0123456789abcdef0123456789abcdef",
        "approverTokens": "alice=tok1",
        "pagerdutyRoutingKey": "pd-key",
        "slackWebhookUrl": "https://hooks.slack.com/services/T/B/X",
        "notifyWebhookUrl": "https://hooks.example.com/remediator",
        "notifyWebhookToken": "wh-token",
        "notifyWebhookSecret": "wh-hmac",
    },
    "monitor": {
        "postgresDsn": "postgresql://monitor@pg.shop:5432/app",
        "redisUrl": "redis://redis.shop:6379/0",
        "passwordSecret": "monitor-passwords",
        "postgresPasswordKey": "pg",
    },
}
VALUE_SETS = {"default": DEFAULT, "minimal": MINIMAL, "ha": HA}
# OpenShift's restricted SCC assigns the UID/GID itself: null removes the keys
OPENSHIFT: dict[str, Any] = {
    "podSecurityContext": {"runAsUser": None, "runAsGroup": None, "fsGroup": None},
    "securityContext": {"runAsUser": None, "runAsGroup": None},
}
EXTRAS: dict[str, Any] = {
    "persistence": {"existingClaim": "remediator-store"},
    "grafanaDashboard": {
        "enabled": True,
        "namespace": "monitoring",
        "annotations": {"grafana_folder": "SRE"},
    },
    "prometheusRule": {"enabled": True, "killSwitchFor": "30m"},
    "settings": {"workers": "16", "retention_days": "30"},
    "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.ops:3128"}],
}
LINTED = {**VALUE_SETS, "openshift": OPENSHIFT, "extras": EXTRAS}

# settings whose value is a credential (or may carry one): they must come from a Secret
SECRET_ENV = {
    "REMEDIATOR_WEBHOOK_TOKEN",
    "REMEDIATOR_APPROVER_TOKENS",
    "REMEDIATOR_REDIS_URL",
    "REMEDIATOR_PAGERDUTY_ROUTING_KEY",
    "REMEDIATOR_SLACK_WEBHOOK_URL",
    "REMEDIATOR_NOTIFY_WEBHOOK_URL",
    "REMEDIATOR_NOTIFY_WEBHOOK_TOKEN",
    "REMEDIATOR_NOTIFY_WEBHOOK_SECRET",
    "REMEDIATOR_MONITOR_POSTGRES_DSN",
    "REMEDIATOR_MONITOR_REDIS_URL",
}


@functools.cache
def _chart() -> helm_python.Chart:
    return helm_python.Chart.load(str(CHART))


def _render_raw(values: dict[str, Any]) -> dict[str, str]:
    return _chart().render(values, name=RELEASE, namespace=NAMESPACE)


@functools.cache
def _rendered(key: str) -> tuple[dict[str, Any], ...]:
    docs: list[dict[str, Any]] = []
    for path, text in _render_raw(LINTED[key]).items():
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return tuple(docs)


def _docs(key: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in _rendered(key) if doc["kind"] == kind]


def _one(key: str, kind: str) -> dict[str, Any]:
    (doc,) = _docs(key, kind)
    return doc


def _container(key: str) -> dict[str, Any]:
    (container,) = _one(key, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def _env(key: str) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in _container(key)["env"]}


def _render_error(values: dict[str, Any]) -> str:
    with pytest.raises(helm_python.HelmError) as info:
        _render_raw(values)
    return str(info.value)


# ---- lint and schema validation --------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(LINTED))
def test_lint_strict_has_no_findings(key: str) -> None:
    report = helm_python.lint(str(CHART), LINTED[key], strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("key", sorted(LINTED))
def test_every_manifest_validates_against_kubernetes(key: str) -> None:
    kinds = set()
    for doc in _rendered(key):
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator CRDs: no schema offline, checked structurally below
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    assert {"Deployment", "Service", "ConfigMap", "Role", "RoleBinding", "ClusterRole", "Pod"} <= kinds


def test_kinds_per_values_set() -> None:
    assert not _docs("default", "PodDisruptionBudget")
    assert _one("default", "PersistentVolumeClaim") and not _docs("ha", "PersistentVolumeClaim")
    assert not [
        doc for doc in _docs("default", "ConfigMap") if doc["metadata"]["name"].endswith("-dashboard")
    ]
    assert not _docs("default", "ServiceMonitor") and not _docs("default", "PrometheusRule")
    assert _one("default", "NetworkPolicy")
    assert not _docs("minimal", "NetworkPolicy") and not _docs("minimal", "ServiceAccount")
    assert not _docs("minimal", "Secret")  # existing Secret only
    assert _one("ha", "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert len(_docs("ha", "Role")) == len(_docs("ha", "RoleBinding")) == 2


def test_schema_rejects_bad_values() -> None:
    for bad in ({"replicas": 0}, {"watchNamespaces": ["Not_A_Namespace"]}, {"secrets": {"typo": "x"}}):
        with pytest.raises(helm_python.HelmError):
            _render_raw(bad)


# ---- RBAC ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_rbac_is_least_privilege(key: str) -> None:
    roles = _docs(key, "Role") + _docs(key, "ClusterRole")
    assert roles
    for role in roles:
        for rule in role["rules"]:
            for field in ("verbs", "resources", "apiGroups"):
                assert not any("*" in item for item in rule[field]), (role["metadata"]["name"], rule)
            assert not any(r.split("/")[0] == "secrets" for r in rule["resources"]), rule
            assert "escalate" not in rule["verbs"] and "bind" not in rule["verbs"]
    for cluster_role in _docs(key, "ClusterRole"):
        assert cluster_role["rules"] == [
            {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": ["get"]}
        ]
    for binding in _docs(key, "RoleBinding") + _docs(key, "ClusterRoleBinding"):
        assert binding["subjects"][0]["namespace"] == NAMESPACE


def _grants(role: dict[str, Any], group: str, resource: str) -> set[str]:
    return {
        verb
        for rule in role["rules"]
        if group in rule["apiGroups"] and resource in rule["resources"]
        for verb in rule["verbs"]
    }


def test_roles_per_watched_namespace_and_verbs() -> None:
    assert {r["metadata"]["namespace"] for r in _docs("ha", "Role")} == {"shop", "billing"}
    (role,) = _docs("default", "Role")
    assert role["metadata"]["namespace"] == "default"
    assert _grants(role, "", "pods") == {"get", "list", "watch"}
    assert _grants(role, "", "pods/log") == {"get"}
    assert _grants(role, "", "pods/eviction") == {"create"}
    assert _grants(role, "", "events") == {"get", "list", "watch"}
    assert _grants(role, "", "persistentvolumeclaims") == {"get", "list"}
    assert _grants(role, "apps", "deployments") == {"get", "list", "watch", "patch"}
    assert _grants(role, "apps", "deployments/scale") == {"get", "patch"}
    assert _grants(role, "apps", "replicasets") == {"get", "list"}
    assert _grants(role, "networking.k8s.io", "networkpolicies") == {"get", "list"}
    assert _grants(role, "autoscaling", "horizontalpodautoscalers") == {"get", "list"}
    assert _grants(role, "policy", "poddisruptionbudgets") == {"get", "list"}


def test_pod_delete_and_pvc_patch_only_when_enabled() -> None:
    for key in ("default", "minimal"):
        roles = _docs(key, "Role")
        assert len(roles) == 1, (key, [role["metadata"] for role in roles])
        for role in roles:
            assert _grants(role, "", "pods"), (key, "the Role grants nothing on pods")
            assert "delete" not in _grants(role, "", "pods")
            assert "patch" not in _grants(role, "", "persistentvolumeclaims")
    assert len(_docs("ha", "Role")) == 2  # shop and billing
    for role in _docs("ha", "Role"):
        assert "delete" in _grants(role, "", "pods")
        assert "patch" in _grants(role, "", "persistentvolumeclaims")


def test_kube_system_is_refused() -> None:
    message = _render_error({"watchNamespaces": ["shop", "kube-system"]})
    assert "kube-system" in message


# ---- Deployment ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_pod_is_hardened(key: str) -> None:
    pod = _one(key, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    context = _container(key)["securityContext"]
    assert context["runAsNonRoot"] is True and context["runAsUser"] == 10001
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in _container(key)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    store = volumes[mounts["/var/lib/remediator"]]
    if key == "ha":  # PostgreSQL: nothing on local disk worth keeping
        assert "emptyDir" in store
    else:
        assert store["persistentVolumeClaim"] == {"claimName": f"{RELEASE}-remediator-data"}
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/remediator/rules"]]["configMap"]["name"] == f"{RELEASE}-remediator-rules"


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_resources_probes_and_rollout(key: str) -> None:
    container = _container(key)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    startup = container["startupProbe"]
    assert startup["httpGet"] == {"path": "/healthz", "port": "http"}
    # migrations run before the service listens: minutes, not the liveness probe's 30 s, before a restart
    assert startup["failureThreshold"] * startup["periodSeconds"] >= 300
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    spec = _one(key, "Deployment")["spec"]
    if key == "ha":
        assert spec["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }
    else:  # SQLite: never two pods on one database file, or two guard states behind one Service
        assert spec["strategy"] == {"type": "Recreate"}
    assert spec["replicas"] == VALUE_SETS[key].get("replicas", 1)
    service = _one(key, "Service")["spec"]
    assert service["type"] == "ClusterIP" and service["ports"][0]["port"] == 8080


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_secrets_come_from_secret_key_refs(key: str) -> None:
    env = _env(key)
    for name, item in env.items():
        assert name.startswith("REMEDIATOR_")
        if name in SECRET_ENV or (name == "REMEDIATOR_STORE_URL" and "value" not in item):
            assert "value" not in item, name
            assert item["valueFrom"]["secretKeyRef"]["key"], name
        if "value" in item:
            assert not re.search(r"://[^/@]*:[^/@]*@", item["value"]), f"{name} carries a password"
    assert "secretKeyRef" in env["REMEDIATOR_WEBHOOK_TOKEN"]["valueFrom"]
    assert "optional" not in env["REMEDIATOR_WEBHOOK_TOKEN"]["valueFrom"]["secretKeyRef"]


def test_every_env_var_is_a_setting() -> None:
    fields = {f"REMEDIATOR_{name.upper()}" for name in Settings.model_fields}
    for key in VALUE_SETS:
        assert set(_env(key)) <= fields, set(_env(key)) - fields


def test_default_env() -> None:
    env = _env("default")
    assert env["REMEDIATOR_LISTEN"]["value"] == "0.0.0.0:8080"
    assert env["REMEDIATOR_RULES_DIR"]["value"] == "/etc/remediator/rules"
    assert env["REMEDIATOR_STORE_URL"]["value"] == "sqlite:////var/lib/remediator/remediator.db"
    assert env["REMEDIATOR_NAMESPACES"]["value"] == "default"
    assert env["REMEDIATOR_DRY_RUN"]["value"] == "false"
    assert "REMEDIATOR_REDIS_URL" not in env
    secret = _one("default", "Secret")
    token = base64.b64decode(secret["data"]["webhook-token"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{32}", token)
    assert env["REMEDIATOR_WEBHOOK_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": secret["metadata"]["name"],
        "key": "webhook-token",
    }
    # console sessions are signed with a key generated once and kept, shared by every replica
    session = base64.b64decode(secret["data"]["session-secret"]).decode()
    assert re.fullmatch(r"[A-Za-z0-9]{48}", session) and session != token
    assert env["REMEDIATOR_SESSION_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "session-secret"


def test_ha_env_and_secret() -> None:
    env = _env("ha")
    assert env["REMEDIATOR_STORE_URL"]["valueFrom"]["secretKeyRef"] == {"name": "remediator-db", "key": "url"}
    assert env["REMEDIATOR_REDIS_URL"]["valueFrom"]["secretKeyRef"]["key"] == "redis-url"
    assert env["REMEDIATOR_NAMESPACES"]["value"] == "shop,billing"
    assert env["REMEDIATOR_PROMETHEUS_URL"]["value"] == "http://prometheus.monitoring:9090"
    assert env["REMEDIATOR_MONITOR_POSTGRES_PASSWORD_FILE"]["value"] == "/etc/remediator/monitor/pg"
    assert set(env) >= SECRET_ENV
    data = {k: base64.b64decode(v).decode() for k, v in _one("ha", "Secret")["data"].items()}
    assert data["webhook-token"] == HA["secrets"]["webhookToken"]
    assert data["redis-url"] == HA["redis"]["url"]
    assert data["slack-webhook-url"] == HA["secrets"]["slackWebhookUrl"]
    assert "store-url" not in data  # from the existing Secret


def test_existing_secret_refs_are_optional_except_the_token() -> None:
    env = _env("minimal")
    assert env["REMEDIATOR_WEBHOOK_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == "remediator-tokens"
    assert env["REMEDIATOR_SLACK_WEBHOOK_URL"]["valueFrom"]["secretKeyRef"]["optional"] is True
    assert "REMEDIATOR_LOG_FORMAT" not in env  # empty settings are left out


def test_replicas_need_postgres_and_redis() -> None:
    message = _render_error({"replicas": 2})
    assert "PostgreSQL" in message and "postgresql.url" in message
    message = _render_error({"replicas": 2, "postgresql": {"url": "postgresql://u@pg/db"}})
    assert "Redis" in message and "redis.url" in message
    assert _render_raw(
        {"replicas": 2, "postgresql": {"url": "postgresql://u@pg/db"}, "redis": {"url": "redis://r"}}
    )


def test_settings_refuse_secrets_and_managed_keys() -> None:
    assert "secret" in _render_error({"settings": {"slack_webhook_url": "https://x"}})
    assert "managed" in _render_error({"settings": {"listen": "0.0.0.0:9090"}})


# ---- rules, alerts, network, notes -----------------------------------------------------------------------------


def test_rule_copies_equal_the_repository_rules() -> None:
    repo = {p.name: p.read_bytes() for p in (ROOT / "rules").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "files" / "rules").glob("*.yaml")}
    assert repo and chart == repo, (
        "helm/remediator/files/rules is stale: cp rules/*.yaml helm/remediator/files/rules/"
    )
    alerts = CHART / "files" / "alerts" / "aitbc.yaml"
    assert alerts.read_bytes() == (ROOT / "rules" / "alerts" / "aitbc.yaml").read_bytes()


def test_configmap_holds_rules_and_extra_rules() -> None:
    data = _one("ha", "ConfigMap")["data"]
    shipped = {p.name for p in (ROOT / "rules").glob("*.yaml")}
    assert set(data) == shipped | {"custom.yaml"}
    assert data["custom.yaml"] == "name: custom\n"
    for name in shipped:
        assert data[name] == (ROOT / "rules" / name).read_text()
    assert "replace a shipped rule" in _render_error({"extraRules": {"redis-failure.yaml": "name: x\n"}})


def test_prometheus_rule_and_service_monitor() -> None:
    groups = _one("ha", "PrometheusRule")["spec"]["groups"]
    exprs = {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}
    assert exprs["RemediatorIntakeErrors"] == 'rate(remediator_intake_requests_total{code=~"5.."}[5m]) > 0'
    assert exprs["RemediatorOutboxBacklog"] == "remediator_outbox_backlog > 100"
    assert exprs["RemediatorEscalationsNotDelivered"] == (
        'increase(remediator_notifications_total{result="failed"}[15m]) > 0'
    )
    aitbc = yaml.safe_load((ROOT / "rules" / "alerts" / "aitbc.yaml").read_text())["groups"]
    assert groups[1:] == aitbc
    monitor = _one("ha", "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["endpoints"][0]["path"] == "/metrics"
    assert monitor["spec"]["endpoints"][0]["port"] == "http"


def test_network_policy_admits_alertmanager_and_monitoring_only() -> None:
    spec = _one("default", "NetworkPolicy")["spec"]
    assert spec["policyTypes"] == ["Ingress"]  # egress open unless networkPolicy.egress.enabled
    (rule,) = spec["ingress"]
    assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    peers = rule["from"]
    assert peers[0]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "alertmanager"}
    assert all("namespaceSelector" in peer for peer in peers)


EGRESS: dict[str, Any] = {
    "networkPolicy": {
        "egress": {
            "enabled": True,
            "apiServer": {"to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]},
            "monitoring": [
                {
                    "to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "shop"}}}],
                    "ports": [{"port": 8011, "protocol": "TCP"}],
                }
            ],
            "notifiers": [{"to": [{"ipBlock": {"cidr": "192.0.2.0/24"}}], "ports": [{"port": 443}]}],
        }
    }
}


def _policy(values: dict[str, Any]) -> dict[str, Any]:
    docs = [yaml.safe_load(t) for p, t in _render_raw(values).items() if p.endswith("networkpolicy.yaml")]
    (doc,) = docs
    kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    return dict(doc["spec"])


def test_egress_is_restricted_to_dns_the_api_server_and_the_listed_peers() -> None:
    spec = _policy(EGRESS)
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    dns, api, monitoring, notifier = spec["egress"]
    assert dns["ports"] == [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert api["to"] == [{"ipBlock": {"cidr": "10.0.0.1/32"}}]
    assert monitoring["ports"] == [{"port": 8011, "protocol": "TCP"}]
    assert notifier["to"] == [{"ipBlock": {"cidr": "192.0.2.0/24"}}]
    assert all(rule.get("to") for rule in spec["egress"]), "a rule without `to` admits every address"


def test_egress_without_the_api_server_or_with_an_open_rule_is_refused() -> None:
    no_api = {"networkPolicy": {"egress": {"enabled": True}}}
    assert "apiServer.to must list" in _render_error(no_api)
    egress = EGRESS["networkPolicy"]["egress"]
    missing = {**egress, "monitoring": [{"ports": [{"port": 80}]}]}
    assert "missing property 'to'" in _render_error({"networkPolicy": {"egress": missing}})
    empty = {**egress, "notifiers": [{"to": [], "ports": [{"port": 443}]}]}
    assert "needs a non-empty `to`" in _render_error({"networkPolicy": {"egress": empty}})


def test_notes_carry_the_alertmanager_receiver() -> None:
    notes = _render_raw({})["remediator/templates/NOTES.txt"]
    assert f"url: http://{RELEASE}-remediator.{NAMESPACE}:8080/v1/alerts" in notes
    assert "send_resolved: true" in notes
    assert "type: Bearer" in notes and "credentials_file:" in notes
    assert f"kubectl get secret {RELEASE}-remediator -n {NAMESPACE}" in notes


# ---- store: persistence and rollout ----------------------------------------------------------------------------


def _docs_of(values: dict[str, Any]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in _render_raw(values).items():
        if not path.endswith("NOTES.txt"):
            docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    for doc in docs:
        if not doc["apiVersion"].startswith("monitoring.coreos.com/"):
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    return docs


def _store_volume(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    (volume,) = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "data"]
    return dict(volume)


def test_sqlite_store_is_kept_on_a_claim_by_default() -> None:
    claim = _one("default", "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == f"{RELEASE}-remediator-data"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "2Gi"
    assert "storageClassName" not in claim["spec"]  # the cluster's default class
    assert _env("default")["REMEDIATOR_STORE_URL"]["value"] == "sqlite:////var/lib/remediator/remediator.db"


def test_persistence_options() -> None:
    docs = _docs_of(
        {"persistence": {"size": "20Gi", "storageClass": "fast-ssd", "accessModes": ["ReadWriteOncePod"]}}
    )
    (claim,) = [doc for doc in docs if doc["kind"] == "PersistentVolumeClaim"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOncePod"]
    (claim,) = [
        d for d in _docs_of({"persistence": {"storageClass": "-"}}) if d["kind"] == "PersistentVolumeClaim"
    ]
    assert claim["spec"]["storageClassName"] == ""  # binds a pre-created volume, no provisioning
    # an existing claim: mounted, none created
    docs = _rendered("extras")
    assert not [doc for doc in docs if doc["kind"] == "PersistentVolumeClaim"]
    assert _store_volume(list(docs))["persistentVolumeClaim"] == {"claimName": "remediator-store"}
    # off: back to a capped emptyDir, still Recreate
    docs = _docs_of({"persistence": {"enabled": False}})
    assert not [doc for doc in docs if doc["kind"] == "PersistentVolumeClaim"]
    assert _store_volume(docs)["emptyDir"] == {"sizeLimit": "1Gi"}
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert (
        "emptyDir (lost when the pod goes)"
        in _render_raw({"persistence": {"enabled": False}})["remediator/templates/NOTES.txt"]
    )


def test_postgresql_store_rolls_and_creates_no_claim() -> None:
    docs = _docs_of({"postgresql": {"url": "postgresql://u@pg/db"}, "persistence": {"enabled": True}})
    assert not [doc for doc in docs if doc["kind"] == "PersistentVolumeClaim"]
    (deployment,) = [doc for doc in docs if doc["kind"] == "Deployment"]
    assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    assert "emptyDir" in _store_volume(docs)


def test_two_replicas_on_sqlite_are_refused_even_with_a_claim() -> None:
    message = _render_error({"replicas": 2, "persistence": {"enabled": True}, "redis": {"url": "redis://r"}})
    assert "needs PostgreSQL" in message and "SQLite only works for one replica" in message


# ---- security contexts -----------------------------------------------------------------------------------------


def test_security_contexts_come_from_values_and_ids_can_be_left_to_openshift() -> None:
    pods = [doc for doc in _rendered("openshift") if doc["kind"] in ("Deployment", "Pod")]
    assert len(pods) == 2  # the Deployment and the `helm test` pod
    for doc in pods:
        spec = doc["spec"]["template"]["spec"] if doc["kind"] == "Deployment" else doc["spec"]
        assert spec["securityContext"] == {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
        (container,) = spec["containers"]
        context = container["securityContext"]
        assert not {"runAsUser", "runAsGroup"} & set(context)
        assert context["runAsNonRoot"] is True and context["readOnlyRootFilesystem"] is True
        assert context["capabilities"] == {"drop": ["ALL"]} and context["allowPrivilegeEscalation"] is False
    custom = _docs_of({"podSecurityContext": {"fsGroup": 2000}, "securityContext": {"runAsUser": 2000}})
    (deployment,) = [doc for doc in custom if doc["kind"] == "Deployment"]
    assert deployment["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == 2000
    assert deployment["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsUser"] == 2000


# ---- settings --------------------------------------------------------------------------------------------------


def test_workers_are_left_to_the_service_unless_set() -> None:
    assert "REMEDIATOR_WORKERS" not in _env("default")
    assert Settings.model_fields["workers"].default == 32  # what the pod then runs with
    env = _env("extras")
    assert env["REMEDIATOR_WORKERS"]["value"] == "16"
    assert env["REMEDIATOR_RETENTION_DAYS"]["value"] == "30"
    assert env["HTTPS_PROXY"]["value"] == "http://proxy.ops:3128"


# ---- values schema ---------------------------------------------------------------------------------------------


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return schema


def _value_paths(node: Any, schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any] | None]]:
    """Every key path of values.yaml with the schema that types it (None: the schema does not know it)."""
    if not isinstance(node, dict):
        return
    for key, value in node.items():
        sub = f"{path}.{key}" if path else key
        known = schema.get("properties", {}).get(key)
        if known is None and isinstance(schema.get("additionalProperties"), dict):
            known = schema["additionalProperties"]  # a free-form map: typed, any key
        yield sub, known
        if known is not None:
            yield from _value_paths(value, known, sub)


def _closed_objects(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, Any]]:
    """(path, additionalProperties) of every schema object that lists its properties."""
    if "properties" in schema:
        yield path or "<root>", schema.get("additionalProperties")
        for key, sub in schema["properties"].items():
            yield from _closed_objects(sub, f"{path}.{key}" if path else key)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from _closed_objects(schema[key], f"{path}[]")


def test_schema_covers_every_values_key_and_refuses_unknown_ones() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    paths = dict(_value_paths(values, _schema(), ""))
    assert len(paths) > 100
    assert [path for path, known in paths.items() if known is None] == []
    open_objects = [path for path, extra in _closed_objects(_schema()) if extra is not False]
    assert open_objects == [], "objects with fixed keys must set additionalProperties: false"


@pytest.mark.parametrize(
    ("values", "where"),
    [
        ({"replicaCount": 2}, "additional properties 'replicaCount'"),
        ({"persistence": {"enable": True}}, "/persistence"),
        ({"networkPolicy": {"egress": {"dns": {"port": 53}}}}, "/networkPolicy/egress/dns"),
        ({"securityContext": {"runAsUsr": 1}}, "/securityContext"),
        ({"grafanaDashboard": {"label": "x"}}, "/grafanaDashboard"),
    ],
)
def test_unknown_keys_fail_lint_and_template(values: dict[str, Any], where: str) -> None:
    assert where in _render_error(values)
    report = helm_python.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert any(where in error for error in report["errors"]), report


# ---- helm test -------------------------------------------------------------------------------------------------


def _test_pod(key: str) -> dict[str, Any]:
    (pod,) = _docs(key, "Pod")
    return pod


def test_helm_test_pod_calls_readyz_on_the_service_with_the_charts_image() -> None:
    pod = _test_pod("default")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Never" and spec["automountServiceAccountToken"] is False
    (container,) = spec["containers"]
    assert container["image"] == _container("default")["image"]  # nothing else to pull
    assert container["command"][:2] == ["python", "-c"]  # the image's ENTRYPOINT is `remediator`
    assert container["command"][3] == f"http://{RELEASE}-remediator.{NAMESPACE}:8080/readyz"
    assert container["securityContext"] == _container("default")["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    # the Service never routes to it; the NetworkPolicy lets it in
    selector = _one("default", "Service")["spec"]["selector"]
    assert not selector.items() <= pod["metadata"]["labels"].items()
    peers = _one("default", "NetworkPolicy")["spec"]["ingress"][0]["from"]
    assert {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": NAMESPACE}},
        "podSelector": {
            "matchLabels": {
                k: v
                for k, v in pod["metadata"]["labels"].items()
                if k.startswith("app.kubernetes.io/") and k != "app.kubernetes.io/managed-by"
            }
        },
    } in peers


class _Readyz(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        body = b'{"status": "ok"}' if self.status == 200 else b'{"status": "store unavailable"}'
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_helm_test_script_passes_on_200_and_fails_on_503() -> None:
    """The pod's script, run as the pod runs it, against a live HTTP server."""
    script = _test_pod("default")["spec"]["containers"][0]["command"][2]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/readyz"
    try:
        outcomes = {}
        for status in (200, 503):
            _Readyz.status = status
            done = subprocess.run(
                [sys.executable, "-c", script, url], check=False, capture_output=True, text=True, timeout=30
            )
            outcomes[status] = (done.returncode, done.stdout)
    finally:
        server.shutdown()
        thread.join()
    assert outcomes[200][0] == 0 and "200" in outcomes[200][1]
    assert outcomes[503][0] == 1 and "store unavailable" in outcomes[503][1]


# ---- NOTES -----------------------------------------------------------------------------------------------------


def test_notes_never_chain_a_blocking_port_forward() -> None:
    notes = _render_raw({})["remediator/templates/NOTES.txt"]
    (forward,) = [line for line in notes.splitlines() if "kubectl port-forward" in line]
    assert "&&" not in forward and "curl" not in forward
    assert forward.strip() == f"kubectl port-forward -n {NAMESPACE} svc/{RELEASE}-remediator 8080:8080"
    assert "curl -s localhost:8080/readyz" in notes and "another" in notes
    assert f"helm test {RELEASE} -n {NAMESPACE}" in notes
    assert "SQLite on the PersistentVolumeClaim rem-remediator-data" in notes
    assert "{{" not in notes and "<no value>" not in notes


# ---- the service's own alerts ----------------------------------------------------------------------------------


def _self_rules(key: str) -> dict[str, dict[str, Any]]:
    groups = _one(key, "PrometheusRule")["spec"]["groups"]
    return {rule["alert"]: rule for rule in groups[0]["rules"]}


def test_self_alerts_on_refused_intake_and_a_kill_switch_left_on() -> None:
    rules = _self_rules("ha")
    refused = rules["RemediatorIntakeRefused"]
    assert (
        refused["expr"] == 'sum by (code) (increase(remediator_intake_requests_total{code=~"4.."}[10m])) > 0'
    )
    assert refused["labels"]["severity"] == "warning"
    kill = rules["RemediatorKillSwitchOn"]
    assert kill["expr"] == "max without (instance, pod) (remediator_kill_switch) == 1"
    assert kill["for"] == "1h" and kill["labels"]["severity"] == "warning"
    assert _self_rules("extras")["RemediatorKillSwitchOn"]["for"] == "30m"


PROMTOOL_TESTS = """
rule_files: [rules.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'remediator_intake_requests_total{code="401", instance="a"}'
        values: '0 0 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3 3'
      - series: 'remediator_intake_requests_total{code="200", instance="a"}'
        values: '0+10x30'
      - series: 'remediator_kill_switch{instance="a", job="remediator"}'
        values: '0 1x80'
    alert_rule_test:
      - {eval_time: 5m, alertname: RemediatorIntakeRefused}
      - eval_time: 9m
        alertname: RemediatorIntakeRefused
        exp_alerts:
          - exp_labels: {code: "401", severity: warning}
            exp_annotations:
              summary: "remediator refuses Alertmanager's webhook posts (401)"
              description: "{description}"
      - {eval_time: 25m, alertname: RemediatorIntakeRefused}
      - {eval_time: 50m, alertname: RemediatorKillSwitchOn}
      - eval_time: 62m
        alertname: RemediatorKillSwitchOn
        exp_alerts:
          - exp_labels: {job: remediator, severity: warning}
            exp_annotations: {annotations}
"""


def test_rendered_rule_groups_pass_promtool(tmp_path: Path) -> None:
    groups = _one("ha", "PrometheusRule")["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    check = subprocess.run(
        ["promtool", "check", "rules", "rules.yaml"],
        cwd=tmp_path,
        check=False,
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{sum(len(g['rules']) for g in groups)} rules found" in check.stdout
    rules = _self_rules("ha")
    tests = PROMTOOL_TESTS.replace(
        "{description}", rules["RemediatorIntakeRefused"]["annotations"]["description"]
    )
    tests = tests.replace("{annotations}", json.dumps(rules["RemediatorKillSwitchOn"]["annotations"]))
    (tmp_path / "tests.yaml").write_text(tests)
    run = subprocess.run(
        ["promtool", "test", "rules", "tests.yaml"], cwd=tmp_path, check=False, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout + run.stderr


# ---- Grafana dashboard -----------------------------------------------------------------------------------------


def test_dashboard_configmap_for_the_grafana_sidecar() -> None:
    (config_map,) = [d for d in _docs("extras", "ConfigMap") if d["metadata"]["name"].endswith("-dashboard")]
    assert config_map["metadata"]["namespace"] == "monitoring"
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert config_map["metadata"]["annotations"] == {"grafana_folder": "SRE"}
    shipped = json.loads((CHART / "files" / "dashboards" / "remediator.json").read_text())
    assert json.loads(config_map["data"]["remediator.json"]) == shipped
    custom = _docs_of(
        {"grafanaDashboard": {"enabled": True, "labelKey": "dashboards", "labelValue": "remediator"}}
    )
    (config_map,) = [
        d for d in custom if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")
    ]
    assert config_map["metadata"]["labels"]["dashboards"] == "remediator"
    assert config_map["metadata"]["namespace"] == NAMESPACE
