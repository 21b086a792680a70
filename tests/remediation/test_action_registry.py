"""The action registry is what rule lint knows: the actions of DESIGN §3.4 with the safety they may have,
each params model refusing unknown keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service import registries
from service.remediation import registry
from service.remediation.base import Params

#: DESIGN §3.4: the actions a rule may mark ``safety: safe``, and those that only run after approval.
SAFE_CAPABLE = {"kube.rollout_restart", "kube.scale", "kube.evict_pod", "postgres.terminate_idle"}
APPROVAL_ONLY = {"kube.rollout_undo", "kube.delete_pods", "kube.expand_pvc", "postgres.promote_replica"}


def test_names_are_the_designed_actions_each_registered_once() -> None:
    names = [definition.name for family in registry.FAMILIES for definition in family]
    assert len(names) == len(set(names)), "an action is registered twice"
    assert set(registry.actions()) == SAFE_CAPABLE | APPROVAL_ONLY


def test_safe_capable_exactly_as_designed() -> None:
    assert {n for n, d in registry.actions().items() if d.safe_capable} == SAFE_CAPABLE
    assert {n for n, d in registry.actions().items() if not d.safe_capable} == APPROVAL_ONLY


def test_rule_lint_knows_every_action_with_its_params_and_safety() -> None:
    known = registries.catalogue().actions
    assert set(known) == set(registry.actions())
    for name, definition in registry.actions().items():
        assert known[name].params is definition.params, name
        assert known[name].safe_capable == definition.safe_capable, name


def test_kube_actions_need_a_target_and_postgres_ones_do_not() -> None:
    for name, definition in registry.actions().items():
        assert definition.needs_target == name.startswith("kube."), name


def test_every_action_has_a_preflight() -> None:
    assert [n for n, d in registry.actions().items() if d.preflight is None] == []


@pytest.mark.parametrize("name", sorted(SAFE_CAPABLE | APPROVAL_ONLY))
def test_params_models_refuse_unknown_keys(name: str) -> None:
    model = registry.actions()[name].params
    assert issubclass(model, Params)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({"no_such_param": 1})
