"""The catalogue rules are checked against, read from the probe and action registries.

Owns nothing but the translation: names, params models and ``safe_capable`` come from
``service.diagnosis.registry`` and ``service.remediation.registry``, so a new probe or action is known to
rule loading and ``rules lint`` as soon as it is registered there. Never does I/O.
"""

from __future__ import annotations

from service.diagnosis import registry as probe_registry
from service.matching import catalogue as known
from service.remediation import registry as action_registry


def catalogue() -> known.Catalogue:
    """Every registered probe and action, for ``loader.load_rules`` and ``loader.lint``."""
    return known.Catalogue(
        probes={name: definition.params for name, definition in probe_registry.probes().items()},
        actions={
            name: known.KnownAction(definition.params, definition.safe_capable)
            for name, definition in action_registry.actions().items()
        },
    )
