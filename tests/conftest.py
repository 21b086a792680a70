"""Shared fixtures: settings on a temporary SQLite store, the app under test, captured payloads."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
AM_FIXTURES = FIXTURES / "alertmanager"

TOKEN = "test-bearer-token-123"  # the token Alertmanager sent in the captured headers.txt


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((AM_FIXTURES / name).read_text())
    return data


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rules plus the test rules of tests/fixtures/rules."""
    target = tmp_path / "rules"
    target.mkdir()
    for source in [*(ROOT / "rules").glob("*.yaml"), *(FIXTURES / "rules").glob("*.yaml")]:
        shutil.copy(source, target / source.name)
    return target


@pytest.fixture
def make_settings(tmp_path: Path, rules_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "store_url": f"sqlite:///{tmp_path / 'remediator.db'}",
            "rules_dir": rules_dir,
            "webhook_token": TOKEN,
            "log_format": "json",
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


async def eventually(check: Callable[[], Any], *, timeout: float = 10.0, interval: float = 0.02) -> Any:
    """Await ``check()`` (sync or async) until it returns a truthy value; fail with the last value."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: Any = None
    while asyncio.get_running_loop().time() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@pytest.fixture(autouse=True)
async def _no_leaked_tasks() -> Any:
    """Every test leaves no asyncio task running that it started, whatever its name (as kopf checks).

    Runs last (autouse, so set up first): by then every fixture has closed what it opened. One pass of the
    loop lets tasks that were cancelled and awaited elsewhere finish; anything still pending is a leak.
    """
    before = asyncio.all_tasks()
    yield
    await asyncio.sleep(0)
    current = asyncio.current_task()
    leftover = [t for t in asyncio.all_tasks() - before if t is not current and not t.done()]
    assert not leftover, "tasks left running: " + "; ".join(
        sorted(f"{t.get_name()}: {t.get_coro()!r}" for t in leftover)
    )


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One real PostgreSQL 15 for the session; each test gets its own database (``postgres_url``)."""
    from tests.support import procs

    with procs.start_postgres(tmp_path_factory.mktemp("pg-shared")) as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: Any) -> str:
    """A fresh, empty database on the shared server, as a store URL."""
    import secrets
    import subprocess

    name = f"t_{secrets.token_hex(6)}"
    subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(postgres_server.port),
            "-U",
            "postgres",
            "-c",
            f"CREATE DATABASE {name}",
        ],
        check=True,
        capture_output=True,
    )
    return f"postgresql://postgres@127.0.0.1:{postgres_server.port}/{name}"
