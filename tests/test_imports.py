"""The heavy client libraries load only when used: a service on its defaults never imports them.

kubernetes-asyncio, redis, asyncpg and the CEL binding cost ~75 MB of resident memory between them; a
single replica on SQLite with no Kubernetes, Redis or PostgreSQL configured and no ``when:`` conditions
must start without any of them. Each check runs in a fresh interpreter, so that nothing a test imported
earlier hides an import.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import FIXTURES, ROOT

HEAVY = ("kubernetes_asyncio", "redis", "asyncpg", "cel")

_LOADED = f"[m for m in {HEAVY!r} if m in sys.modules]"

SERVE = f"""
import asyncio, json, sys
from pathlib import Path

import service.cli
import service.app
from aiohttp import web
from service.settings import Settings

seen = {{"import": {_LOADED}}}
settings = Settings(
    store_url="sqlite:///" + sys.argv[1], rules_dir=Path(sys.argv[2]), webhook_token="t", log_format="json"
)
app = service.app.create_app(settings)
seen["create_app"] = {_LOADED}


async def start_and_stop() -> None:
    runner = web.AppRunner(app)
    await runner.setup()  # the cleanup contexts open: store, coordination, clients, workers
    seen["started"] = {_LOADED}
    await runner.cleanup()


asyncio.run(start_and_stop())
print(json.dumps(seen))
"""

USE = f"""
import asyncio, json, sys
from pathlib import Path

from service import errors
from service.clients.kube import KubeClient
from service.clients.postgres import PostgresConnector, Unreachable
from service.clients.redis import RedisConnector
from service.matching import conditions

seen = {{"import": {_LOADED}}}
assert conditions.compile_condition("1 + 1 == 2").evaluate({{}}) is True
seen["condition"] = {_LOADED}


async def use() -> None:
    kube = await KubeClient.connect(Path(sys.argv[1]))
    assert kube is not None
    await kube.close()
    seen["kube"] = {_LOADED}
    async with RedisConnector("redis://127.0.0.1:1/0", None).connect(timeout=1.0):
        pass  # redis-py connects on the first command
    seen["redis"] = {_LOADED}
    try:
        async with PostgresConnector("postgresql://u@127.0.0.1:1/db", None).connect(timeout=2.0):
            pass
    except Unreachable:  # asyncpg's own error, caught and translated as before
        pass
    seen["postgres"] = {_LOADED}


asyncio.run(use())
print(json.dumps(seen))
"""

KUBECONFIG = """
apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u}}]
current-context: x
"""


def _run(script: str, *args: str) -> dict[str, list[str]]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REMEDIATOR_") and k != "KUBERNETES_SERVICE_HOST"
    }
    done = subprocess.run(
        [sys.executable, "-c", script, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen: dict[str, list[str]] = json.loads(done.stdout.strip().splitlines()[-1])
    return seen


def test_serving_on_defaults_imports_no_heavy_client_library(tmp_path: Path) -> None:
    rules = tmp_path / "rules"  # rules without a CEL condition
    shutil.copytree(FIXTURES / "rules", rules)

    seen = _run(SERVE, str(tmp_path / "remediator.db"), str(rules))

    assert seen == {"import": [], "create_app": [], "started": []}


def test_each_library_loads_on_first_use(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(KUBECONFIG)

    seen = _run(USE, str(kubeconfig))

    assert seen == {
        "import": [],
        "condition": ["cel"],
        "kube": ["kubernetes_asyncio", "cel"],
        "redis": ["kubernetes_asyncio", "redis", "cel"],
        "postgres": ["kubernetes_asyncio", "redis", "asyncpg", "cel"],
    }


MIGRATE_TWICE = """
import asyncio, json, sys

from service.records.store import Store


async def main() -> dict[str, object]:
    store = Store.open("sqlite:///" + sys.argv[1])
    try:
        before = await store.at_head()
        await store.migrate()
        return {"before": before, "after": await store.at_head(), "alembic": "alembic" in sys.modules}
    finally:
        await store.close()


print(json.dumps(asyncio.run(main())))
"""


def test_a_store_at_the_head_revision_is_not_migrated_and_alembic_stays_unloaded(tmp_path: Path) -> None:
    """``serve`` migrates in a forked child; the serving process then finds the schema current and never
    holds Alembic (~12 MB)."""
    db = str(tmp_path / "store.db")
    first, second = (_run(MIGRATE_TWICE, db) for _ in range(2))
    assert first == {"before": False, "after": True, "alembic": True}
    assert second == {"before": True, "after": True, "alembic": False}


def _run(code: str, *args: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])
