"""Console sessions: a token exchanged at sign-in for a signed, expiring cookie; and the flash message.

A session cookie is ``v1.<name>.<role>.<expiry>.<nonce>.<signature>``: the name base64url-encoded, the role
``approver`` or ``reader``, the expiry in epoch seconds, a random nonce (the session id the CSRF token is
bound to), and HMAC-SHA256 with the session secret over ``name|role|expiry|nonce``, compared in constant time.
Nothing is kept on the server: a cookie that is expired, forged or malformed is no session at all.
The cookie is HttpOnly, SameSite=Strict, Path=/ui, and Secure when the request came over https (or a proxy
said so with ``X-Forwarded-Proto: https``).

The flash message (what the last button did) travels in a second signed cookie, read once.
Never logs a cookie or a token.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Literal

import orjson
from aiohttp import web

Role = Literal["approver", "reader"]
COOKIE = "remediator_session"
FLASH = "remediator_flash"
PATH = "/ui"
_VERSION = "v1"
MAX_FLASH = 400


@dataclass(frozen=True)
class Session:
    """A signed-in person: ``name`` (the approver's, or ``reader``), ``role``, ``expires`` (epoch s), and
    ``nonce``, the session id CSRF tokens are bound to."""

    name: str
    role: Role
    expires: float
    nonce: str

    @property
    def approver(self) -> bool:
        return self.role == "approver"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, *parts: str) -> str:
    return _b64(hmac.new(secret, "|".join(parts).encode(), hashlib.sha256).digest())


def new(name: str, role: Role, *, now: float, ttl_s: float) -> Session:
    return Session(name=name, role=role, expires=float(int(now + ttl_s)), nonce=secrets.token_urlsafe(16))


def encode(session: Session, secret: bytes) -> str:
    """The cookie value of ``session``."""
    name = _b64(session.name.encode())
    expiry = str(int(session.expires))
    signature = _sign(secret, name, session.role, expiry, session.nonce)
    return ".".join((_VERSION, name, session.role, expiry, session.nonce, signature))


def decode(value: str | None, secret: bytes, *, now: float) -> Session | None:
    """The session of a cookie value; None when it is missing, malformed, forged or expired."""
    if not value:
        return None
    parts = value.split(".")
    if len(parts) != 6 or parts[0] != _VERSION:
        return None
    _, name, role, expiry, nonce, signature = parts
    expected = _sign(secret, name, role, expiry, nonce)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        return None
    if role not in ("approver", "reader") or not expiry.isdigit() or int(expiry) <= now:
        return None
    try:
        person = _unb64(name).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    return Session(
        name=person, role="approver" if role == "approver" else "reader", expires=float(expiry), nonce=nonce
    )


def is_https(request: web.Request) -> bool:
    forwarded = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return request.secure or forwarded == "https"


def _cookie(response: web.StreamResponse, request: web.Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="Strict",
        secure=is_https(request),
    )


def set_cookie(
    response: web.StreamResponse, request: web.Request, session: Session, secret: bytes, *, now: float
) -> None:
    _cookie(response, request, COOKIE, encode(session, secret), max(1, int(session.expires - now)))


def clear_cookie(response: web.StreamResponse, request: web.Request) -> None:
    _cookie(response, request, COOKIE, "", 0)


def set_flash(
    response: web.StreamResponse, request: web.Request, message: str, ok: bool, secret: bytes
) -> None:
    """What the last button did, shown once by the next page."""
    body = _b64(orjson.dumps({"m": message[:MAX_FLASH], "ok": ok}))
    _cookie(response, request, FLASH, f"{body}.{_sign(secret, 'flash', body)}", 60)


def read_flash(request: web.Request, secret: bytes) -> tuple[str, bool] | None:
    """The flash message of the request; None when there is none or it is not ours."""
    value = request.cookies.get(FLASH)
    if not value:
        return None
    body, _, signature = value.partition(".")
    if not hmac.compare_digest(signature.encode(), _sign(secret, "flash", body).encode()):
        return None
    try:
        data = orjson.loads(_unb64(body))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    return str(data.get("m", ""))[:MAX_FLASH], bool(data.get("ok"))


def forget_flash(response: web.StreamResponse, request: web.Request) -> None:
    """The page showed the flash message: the browser forgets it."""
    if FLASH in request.cookies:
        _cookie(response, request, FLASH, "", 0)
