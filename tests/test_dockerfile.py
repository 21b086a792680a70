"""The Dockerfile: hadolint-clean, multi-stage, installs exactly uv.lock, runs as non-root with a health check."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_hadolint_passes() -> None:
    result = subprocess.run(
        [str(HADOLINT), "--no-color", str(DOCKERFILE)],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_build_stage_installs_the_lock_file_frozen() -> None:
    build = _stages()[0]
    copies = " ".join(args for word, args in build if word == "COPY")
    assert "uv.lock" in copies
    syncs = [args for word, args in build if word == "RUN" and "uv sync" in args]
    assert syncs
    for args in syncs:
        assert "--frozen" in args and "--no-dev" in args and "--no-editable" in args
    env = " ".join(args for word, args in build if word == "ENV")
    assert "UV_PROJECT_ENVIRONMENT=/opt/venv" in env


def test_final_stage_is_slim_non_root_and_healthy() -> None:
    stages = _stages()
    assert len(stages) >= 2
    final = stages[-1]
    words = [word for word, _ in final]
    users = [args for word, args in final if word == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert users[-1].split(":")[0] == "10001"
    (healthcheck,) = [args for word, args in final if word == "HEALTHCHECK"]
    assert "/healthz" in healthcheck
    (entrypoint,) = [args for word, args in final if word == "ENTRYPOINT"]
    assert entrypoint == '["remediator", "serve"]'
    copies = [args for word, args in final if word == "COPY"]
    assert any(args.startswith("--from=build /opt/venv") for args in copies)
    assert any(args.startswith("rules/") and "/etc/remediator/rules" in args for args in copies)
    runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("uv ", "pip install", "apt-get install", "gcc", "build-essential"):
        assert tool not in runs, f"final stage installs {tool.strip()}"
    assert "slim" in " ".join(args for word, args in _instructions() if word in {"ARG", "FROM"})
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in {"RUN", "COPY"})
