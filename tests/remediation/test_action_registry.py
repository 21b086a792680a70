"""The action registry agrees with the catalog that rule lint uses: the same names, and an action is
safe-capable exactly when the catalog says so; every params model refuses unknown keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.model import catalog
from service.remediation import registry
from service.remediation.base import Params


def test_names_equal_the_catalog() -> None:
    names = [definition.name for family in registry.FAMILIES for definition in family]
    assert len(names) == len(set(names)), "an action is registered twice"
    assert set(registry.actions()) == catalog.ACTIONS


def test_safe_capable_exactly_when_the_catalog_says_so() -> None:
    for name, definition in registry.actions().items():
        assert definition.safe_capable == (name in catalog.SAFE_CAPABLE_ACTIONS), name
    assert {n for n, d in registry.actions().items() if not d.safe_capable} == catalog.APPROVAL_ONLY_ACTIONS


def test_kube_actions_need_a_target_and_postgres_ones_do_not() -> None:
    for name, definition in registry.actions().items():
        assert definition.needs_target == name.startswith("kube."), name


def test_every_action_has_a_preflight() -> None:
    assert [n for n, d in registry.actions().items() if d.preflight is None] == []


@pytest.mark.parametrize("name", sorted(catalog.ACTIONS))
def test_params_models_refuse_unknown_keys(name: str) -> None:
    model = registry.param_models()[name]
    assert issubclass(model, Params)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        model.model_validate({"no_such_param": 1})
