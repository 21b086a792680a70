"""Credentials: the webhook token (bearer or basic-auth password) and approver tokens.

Every comparison is constant-time. ``None`` means "no credentials configured": the service then binds
loopback only (enforced by settings) and intake is open.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping

from aiohttp import web
from pydantic import SecretStr

from service.intake import responses


def _same(given: str, expected: str) -> bool:
    """Constant-time equality. aiohttp decodes header bytes that are not UTF-8 as lone surrogates, which a
    plain ``encode()`` refuses (that answered 500, on every endpoint, before any credential was checked);
    ``surrogatepass`` encodes every string, one to one, so equal bytes still mean equal strings."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def presented_secret(request: web.Request) -> str | None:
    """The bearer token, or the password of basic auth, presented by the request (or None)."""
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer" and value.strip():
        return value.strip()
    if scheme == "basic" and value.strip():
        try:  # a non-ASCII character in the value is a ValueError (binascii.Error is one too)
            decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except ValueError:
            return ""  # presented, and matching nothing: 401 invalid credentials
        _user, sep, password = decoded.partition(":")
        return password if sep else None
    return None


MISSING = "missing credentials"
INVALID = "invalid credentials"


def webhook_denial(request: web.Request, token: SecretStr | None) -> str | None:
    """Why the webhook token check fails (None: allowed). Bearer token or basic-auth password."""
    if token is None:
        return None
    given = presented_secret(request)
    if given is None:
        return MISSING
    return None if _same(given, token.get_secret_value()) else INVALID


def reader_denial(
    request: web.Request, token: SecretStr | None, approvers: Mapping[str, SecretStr]
) -> str | None:
    """Why the read-API check fails (None: allowed): the webhook token or any approver token."""
    if token is None and not approvers:
        return None
    given = presented_secret(request)
    if given is None:
        return MISSING
    if token is not None and _same(given, token.get_secret_value()):
        return None
    return None if approver_name(given, approvers) is not None else INVALID


def approver_name(given: str, approvers: Mapping[str, SecretStr]) -> str | None:
    """The name of the approver whose token this is; every token is compared (constant time overall)."""
    found: str | None = None
    for name, secret in approvers.items():
        if _same(given, secret.get_secret_value()):
            found = name
    return found


def unauthorized(message: str) -> web.Response:
    response = responses.error(401, message)
    response.headers["WWW-Authenticate"] = 'Bearer realm="remediator"'
    return response
