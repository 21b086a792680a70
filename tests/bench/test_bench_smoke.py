"""``python -m bench --quick`` runs and writes its table (wrk comes from scripts/install-system-deps.sh).
Speed itself is measured by the benchmark, never asserted here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quick_run_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text()
    assert "| baseline | 1 |" in text
    assert "| sqlite | 1 |" in text
    assert "FAILED" not in result.stdout
    assert "## Matching" in text
