import asyncio

import pytest
import pytest_asyncio

from tests.support.kube_standin import KubeStandin

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def standin():
    async with KubeStandin(rollout_delay=0.2) as s:
        s.add_deployment("shop", "coordinator", replicas=3)
        yield s


async def test_a(standin):
    print([p["metadata"]["name"] for p in standin.pods_of("shop", "coordinator")])
    await asyncio.sleep(0)


async def test_b(standin):
    await asyncio.sleep(0)
