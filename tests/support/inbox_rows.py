"""One inbox row as intake stores it, for tests that write the inbox directly (claims, fencing, group commit)."""

from __future__ import annotations

import time
from typing import Any


def inbox_row(
    fingerprint: str,
    status: str = "firing",
    starts_at: str = "2026-11-27T10:00:00.000000Z",
    **values: Any,
) -> dict[str, Any]:
    """A pending row of alert ``fingerprint`` received now; ``values`` override any column."""
    return {
        "fingerprint": fingerprint,
        "starts_at": starts_at,
        "status": status,
        "alertname": "A",
        "payload": "{}",
        "receiver": "r",
        "group_key": "",
        "truncated": 0,
        "received_at": time.time(),
        "state": "pending",
        "attempts": 0,
        **values,
    }
