"""The Helm chart (helm/remediator): renders, lints, validates against Kubernetes 1.30 and stays least-privilege.

Rendering goes through helm_python (the Helm Go SDK; no cluster, ``lookup`` returns nothing), validation through
kubernetes_validate's offline schemas. Each values set is rendered once per session.
"""

from __future__ import annotations

import base64
import functools
import re
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
    for path, text in _render_raw(VALUE_SETS[key]).items():
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


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_lint_strict_has_no_findings(key: str) -> None:
    report = helm_python.lint(str(CHART), VALUE_SETS[key], strict=True, kube_version=f"v{KUBE_VERSION}.0")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_every_manifest_validates_against_kubernetes(key: str) -> None:
    kinds = set()
    for doc in _rendered(key):
        kinds.add(doc["kind"])
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # Prometheus Operator CRDs: no schema offline, checked structurally below
        kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    assert {"Deployment", "Service", "ConfigMap", "Role", "RoleBinding", "ClusterRole"} <= kinds


def test_kinds_per_values_set() -> None:
    assert not _docs("default", "PodDisruptionBudget")
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
    assert "emptyDir" in volumes[mounts["/var/lib/remediator"]]
    assert "emptyDir" in volumes[mounts["/tmp"]]
    assert volumes[mounts["/etc/remediator/rules"]]["configMap"]["name"] == f"{RELEASE}-remediator-rules"


@pytest.mark.parametrize("key", sorted(VALUE_SETS))
def test_resources_probes_and_rollout(key: str) -> None:
    container = _container(key)
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind])
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    spec = _one(key, "Deployment")["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
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
