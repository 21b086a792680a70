"""CSRF tokens of the console's forms: HMAC-SHA256 of the session id (its nonce) with the session secret.

Every state-changing form carries one in its ``csrf`` field; a POST whose token is missing or is not its
session's is refused (403) before anything is decided. The token is bound to the session, so a token seen in
one session is worthless in another, and it needs no server-side state.
"""

from __future__ import annotations

import hashlib
import hmac

from service.console import sessions

FIELD = "csrf"


def token(session: sessions.Session, secret: bytes) -> str:
    return hmac.new(secret, f"csrf|{session.nonce}".encode(), hashlib.sha256).hexdigest()


def valid(session: sessions.Session, secret: bytes, given: str | None) -> bool:
    """Whether ``given`` is this session's token (constant-time)."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), token(session, secret).encode())
