"""Client adapters: thin wrappers over kubernetes-asyncio, aiohttp, asyncpg and redis that own their
exceptions and translate them to ``service.errors`` (``Transient`` / ``Permanent``)."""
