"""What lint reports: ``LintError`` (file, line, message, severity) and ``RuleLoadError`` (a list of them).

Both are re-exported by ``loader``. Never does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class LintError:
    """One problem of one rule file; ``line`` is 1-based, 0 when it has none (e.g. a missing directory)."""

    file: str
    line: int
    message: str
    severity: Literal["error", "warning"] = "error"

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.severity}: {self.message}"


class RuleLoadError(Exception):
    """Rules failed to load; ``errors`` holds every problem found, one per line in ``str()``."""

    def __init__(self, errors: list[LintError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(error) for error in errors))
