"""CEL conditions: the ``when:`` of a remediation, compiled once and evaluated per incident.

Owns compiling a CEL expression (the language of Kubernetes admission policies) and evaluating it against
plain data, e.g. ``{"findings": {"pods": {"status": "ok", "facts": {...}}}}``. A condition must yield a
bool; anything else, and any evaluation error (an unknown finding id, a type mismatch), is a
``ConditionError`` naming the expression, never a silent ``False``. Never does I/O. The ``cel`` binding
(which drags in a command-line shell) is imported by the first condition compiled, not with this module.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class ConditionError(ValueError):
    """A CEL expression that does not compile, fails to evaluate, or does not yield a bool."""


@dataclass(frozen=True)
class Condition:
    """A compiled CEL expression; ``source`` is the text from the rule file."""

    source: str
    _program: Any = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        import cel

        try:
            program = cel.compile(self.source)
        except Exception as exc:  # the binding raises ValueError; be robust to other parser errors
            raise ConditionError(str(exc)) from exc
        object.__setattr__(self, "_program", program)

    def evaluate(self, context: Mapping[str, Any]) -> bool:
        """Evaluate against plain data (dicts, lists, str, int, float, bool, None)."""
        try:
            result = self._program.execute(dict(context))
        except Exception as exc:  # the binding raises RuntimeError, KeyError, TypeError, ...
            raise ConditionError(f"condition {self.source!r} failed: {_reason(exc)}") from exc
        if not isinstance(result, bool):
            raise ConditionError(
                f"condition {self.source!r} gave {type(result).__name__} {result!r}, not a bool"
            )
        return result


def compile_condition(expr: str) -> Condition:
    """Compile a CEL expression; ConditionError carries CEL's own message (with line and column)."""
    if not isinstance(expr, str) or not expr.strip():
        raise ConditionError("a condition must be a non-empty CEL expression")
    return Condition(expr)


def _reason(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no such key {exc.args[0]!r}" if exc.args else "no such key"
    return str(exc) or type(exc).__name__
