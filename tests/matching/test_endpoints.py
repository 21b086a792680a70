"""Where a probe connects: a label may fill one DNS-1123 label inside the rule's own host, nothing more."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.matching import loader, templates

RULE = """
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match: [alertname="CoordinatorDown"]
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: coordinator
diagnose:
  - {id: health, probe: http.get, with: {url: "http://coordinator.{{ labels.namespace }}:8011/v1/health"}}
  - {id: db, probe: tcp.connect, with: {host: "postgresql.{{ labels.namespace }}", port: 5432}}
  - {id: dns, probe: dns.resolve, with: {name: "node.{{ labels.namespace }}.svc.cluster.local"}}
  - {id: literal, probe: http.get, with: {url: "http://10.0.0.7:9100/metrics"}}
"""

HOSTILE = [
    "x@169.254.169.254/latest/meta-data/#",
    "169.254.169.254",
    "evil.example.com",
    "ns:80",
    "ns/../admin",
    "ns?x=1",
    "ns#frag",
    "ns\n",
    "NS",
    "a" * 64,
    "",
    "[::1]",
]


def render(namespace: str, index: int) -> dict[str, object]:
    rule = loader.parse_rule(RULE)
    return templates.render_params(rule.diagnose_params[index], {"labels": {"namespace": namespace}})


@pytest.mark.parametrize("index, key", [(0, "url"), (1, "host"), (2, "name")])
@pytest.mark.parametrize("namespace", HOSTILE)
def test_a_label_that_is_not_one_dns_label_never_reaches_a_host(index: int, key: str, namespace: str) -> None:
    with pytest.raises(templates.TemplateError, match="DNS-1123 label"):
        render(namespace, index)


def test_a_valid_namespace_fills_its_label() -> None:
    assert render("shop", 0)["url"] == "http://coordinator.shop:8011/v1/health"
    assert render("shop", 1)["host"] == "postgresql.shop"
    assert render("shop", 2)["name"] == "node.shop.svc.cluster.local"


def test_a_literal_host_is_the_rule_authors_choice() -> None:
    assert render("x@evil", 3)["url"] == "http://10.0.0.7:9100/metrics"


def test_only_templated_params_are_marked_templated() -> None:
    rule = loader.parse_rule(RULE)
    assert [p.templated for p in rule.diagnose_params] == [True, True, True, False]


@pytest.mark.parametrize(
    "key, source",
    [
        ("url", "{{ labels.url }}"),
        ("url", "http://{{ labels.host }}/x"),
        ("url", "{{ labels.scheme }}://coordinator/x"),
        ("host", "{{ labels.host }}"),
        ("host", "{{ labels.a }}.{{ labels.b }}"),
    ],
)
def test_a_template_may_not_write_the_scheme_or_the_start_of_the_host(key: str, source: str) -> None:
    _, problems = templates.TemplateCompiler().params({key: source}, "with", endpoints=frozenset({key}))
    assert len(problems) == 1
    assert "write the scheme and the start of the host literally" in problems[0][1]


def test_rules_lint_reports_a_whole_host_from_a_label() -> None:
    text = RULE.replace("http://coordinator.{{ labels.namespace }}", "http://{{ labels.instance }}")
    with pytest.raises(loader.RuleLoadError, match=r"diagnose\[0\]\.with\.url"):
        loader.parse_rule(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_any_label_value_renders_a_checked_endpoint_or_nothing(value: str) -> None:
    rule = loader.parse_rule(RULE)
    for index, key in ((0, "url"), (1, "host"), (2, "name")):
        try:
            rendered = templates.render_params(rule.diagnose_params[index], {"labels": {"namespace": value}})
        except templates.TemplateError:
            continue
        assert templates.check_endpoint(key, str(rendered[key])) is None
        assert value.isascii() and value == value.lower() and "." not in value and "@" not in value


@pytest.mark.parametrize(
    "value",
    [
        "http://a@b/",
        "ftp://host/",
        "http://10.0.0.1/",
        "http://host:99999999/",
        "http://-bad-/",
        "host.example",
    ],
)
def test_check_endpoint_refuses_urls_a_label_could_not_have_made_safely(value: str) -> None:
    assert templates.check_endpoint("url", value) is not None
