"""The Dockerfile: hadolint-clean, multi-stage, installs exactly uv.lock, runs as non-root with a health check,
labelled (OCI), ``remediator`` as entrypoint; and .dockerignore: a build context of only what it copies."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
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
    (cmd,) = [args for word, args in final if word == "CMD"]
    assert (entrypoint, cmd) == ('["remediator"]', '["serve"]')  # `docker run IMAGE migrate` works
    copies = [args for word, args in final if word == "COPY"]
    assert any(args.startswith("--from=build /opt/venv") for args in copies)
    assert any(args.startswith("rules/") and "/etc/remediator/rules" in args for args in copies)
    runs = " ".join(args for word, args in final if word == "RUN")
    for tool in ("uv ", "pip install", "apt-get install", "gcc", "build-essential"):
        assert tool not in runs, f"final stage installs {tool.strip()}"
    assert "slim" in " ".join(args for word, args in _instructions() if word in {"ARG", "FROM"})
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in {"RUN", "COPY"})


def test_image_is_labelled_with_version_revision_source_and_licence() -> None:
    final = _stages()[-1]
    labels = dict(
        re.findall(
            r'(org\.opencontainers\.image\.[a-z]+)="([^"]*)"', " ".join(a for w, a in final if w == "LABEL")
        )
    )
    assert set(labels) >= {
        "org.opencontainers.image.title",
        "org.opencontainers.image.description",
        "org.opencontainers.image.version",
        "org.opencontainers.image.revision",
        "org.opencontainers.image.source",
        "org.opencontainers.image.licenses",
    }
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert labels["org.opencontainers.image.licenses"] == project["license"] == "Apache-2.0"
    args = dict(a.partition("=")[::2] for w, a in final if w == "ARG")
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert args["VERSION"] == project["version"]  # the default a plain `docker build` labels with
    assert labels["org.opencontainers.image.revision"] == "${REVISION}"
    assert args["SOURCE"].startswith("https://") and labels["org.opencontainers.image.source"] == "${SOURCE}"


def test_the_licence_ships_in_the_repository_the_wheel_and_the_image() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text  # the full text, not a pointer to it
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license-files"] == ["LICENSE"]
    final = _stages()[-1]
    assert any(a.split()[0] == "LICENSE" for w, a in final if w == "COPY")


def _ignored(path: str, patterns: list[str]) -> bool:
    """Whether Docker leaves ``path`` out of the build context. As BuildKit walks the context: each directory
    from the top starts from its parent's verdict, and the last pattern matching it decides (``!``: keep)."""
    ignored = False
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        here = "/".join(parts[:depth])
        for pattern in patterns:
            if re.fullmatch(_regex(pattern.removeprefix("!").strip("/")), here):
                ignored = not pattern.startswith("!")
    return ignored


def _regex(glob: str) -> str:
    """A .dockerignore glob as a regular expression: ``**`` any depth, ``*`` and ``?`` within a name."""
    out = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    return out.replace(r"\?", "[^/]").replace(r"\[", "[").replace(r"\]", "]")


def _dockerignore() -> list[str]:
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerignore_keeps_the_virtualenv_git_and_databases_out_of_the_build_context() -> None:
    patterns = _dockerignore()
    for path in (
        ".venv/bin/python",
        ".venv/lib/python3.11/site-packages/aiohttp/__init__.py",
        ".git/HEAD",
        ".git/objects/ab/cdef",
        "remediator.db",
        "remediator.db-wal",
        "remediator.db-shm",
        "service/records/local.db",
        "service/__pycache__/app.cpython-311.pyc",
        "service/intake/__pycache__/webhook.cpython-311.pyc",
        ".pytest_cache/v/cache/nodeids",
        ".mypy_cache/3.11/service/app.data.json",
        ".ruff_cache/CACHEDIR.TAG",
        "tests/conftest.py",
        "bench/load.py",
        "docs/performance.md",
        "helm/remediator/values.yaml",
    ):
        assert _ignored(path, patterns), f"{path} would be sent to the Docker daemon"


def test_dockerignore_lets_through_everything_the_dockerfile_copies() -> None:
    patterns = _dockerignore()
    sources = [
        source
        for word, args in _instructions()
        if word == "COPY" and not args.startswith("--from")
        for source in args.split()[:-1]
    ]
    assert {"pyproject.toml", "uv.lock", "README.md", "LICENSE", "service", "rules/*.yaml"} <= set(sources)
    kept = [
        "pyproject.toml",
        "uv.lock",
        "README.md",
        "LICENSE",
        "service/app.py",
        "service/intake/webhook.py",
    ]
    kept += [f"rules/{p.name}" for p in (ROOT / "rules").glob("*.yaml")]
    kept += [str(p.relative_to(ROOT)) for p in (ROOT / "service" / "records" / "migrations").rglob("*.py")]
    for path in kept:
        assert not _ignored(path, patterns), f"{path} is needed by the build but left out of the context"
