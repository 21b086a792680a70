"""The request id: one per HTTP request, in every log line emitted while handling it and in the answer.

Taken from the request's ``X-Request-Id`` when it is a plain token (1-128 of ``[A-Za-z0-9._-]``), so
that a proxy's or a client's id carries through; anything else (too long, spaces, control or non-ASCII
characters) is replaced by a generated one and never reaches a log line. The edge middleware
(``timing.edge``) binds it into structlog's contextvars for the request's duration only and sends it back in
``X-Request-Id`` on every answer the application gives, refusals and errors included (aiohttp's own 400 for
a request it cannot parse never reaches the application, so it has none).

Tasks a request spawns to finish its own work (an approved action's verification, a Slack interaction)
copy the context and keep the id, which is the point; the long-lived workers are created at start-up,
outside any request, and never carry one. Never stores or logs the header's raw value.
"""

from __future__ import annotations

import itertools
import os
import re

HEADER = "X-Request-Id"
MAX_LENGTH = 128
_VALID = re.compile(rf"[A-Za-z0-9._-]{{1,{MAX_LENGTH}}}")


#: Generated ids: a random prefix per process and a counter. An id correlates log lines with an answer; it
#: is not a secret (a client may choose its own), so it needs to be unique, not unguessable — the random
#: prefix keeps the replicas' and the restarts' ids apart. Half the cost of 16 bytes of os.urandom.
_PREFIX = os.urandom(8).hex()
_COUNTER = itertools.count(1)


def request_id(header: str | None) -> str:
    """The id to use: ``header`` when it is a valid id, else a new one (32 hex digits)."""
    if header is not None and _VALID.fullmatch(header):
        return header
    return f"{_PREFIX}{next(_COUNTER):016x}"
