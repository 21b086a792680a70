"""``python -m bench --quick`` runs in under 20 s and writes its table (needs wrk on PATH)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (apt-get install -y wrk)")
def test_quick_run_writes_the_table(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    assert elapsed < 20, f"--quick took {elapsed:.1f} s"
    text = out.read_text()
    assert "| baseline | 1 |" in text
    assert "| sqlite | 1 |" in text
    assert "FAILED" not in result.stdout
    assert "## Matching" in text
