"""Talking to a running service from the command line: the URL, the token, one request, and what a refusal
means for the exit code.

Errors (``main`` turns them into exit codes)::

    CliError
    ├── Failure   exit 1: the service refused (4xx/5xx), could not be reached, or the action failed
    └── Usage     exit 2: the command line itself is wrong (a token file that cannot be read, …)

Tokens never travel as flag values (a secret in argv is visible to every user through ``ps``): reads use
``$REMEDIATOR_WEBHOOK_TOKEN`` (else ``$REMEDIATOR_APPROVER_TOKEN``), decisions ``$REMEDIATOR_APPROVER_TOKEN``,
and ``--token-file PATH`` overrides both. Standard library only, so a command starts in a blink.
"""

from __future__ import annotations

import argparse
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

READ_ENV = "REMEDIATOR_WEBHOOK_TOKEN"
APPROVER_ENV = "REMEDIATOR_APPROVER_TOKEN"
URL_ENV = "REMEDIATOR_URL"

Role = Literal["webhook", "read", "approver"]

#: The epilog of every command that talks to the service.
EXIT_CODES = (
    "exit codes: 0 ok; 1 failure (the service refused, could not be reached, or the action failed: the "
    "error is on stderr); 2 usage"
)


class CliError(Exception):
    """A command that cannot go on; ``code`` is the exit code."""

    code = 1


class Failure(CliError):
    """The service refused or failed (exit 1)."""


class Usage(CliError):
    """The command line is wrong (exit 2)."""

    code = 2


class _RefuseTokenFlag(argparse.Action):
    """``--token VALUE`` is refused before anything is sent: the value would be visible in ``ps``."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        parser.error(
            "--token is not accepted: a token on the command line is visible to every user through ps; "
            f"put it in a file and pass --token-file PATH, or set ${READ_ENV} (reads) / ${APPROVER_ENV} "
            "(decisions)"
        )


def parent(role: Role) -> argparse.ArgumentParser:
    """The options every command that talks to the service takes."""
    env = {"webhook": READ_ENV, "read": f"{READ_ENV}, else ${APPROVER_ENV}", "approver": APPROVER_ENV}[role]
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--url",
        default=os.environ.get(URL_ENV, "http://127.0.0.1:8080"),
        help=f"the service (default: ${URL_ENV} or http://127.0.0.1:8080)",
    )
    options.add_argument(
        "--token-file", metavar="PATH", help=f"read the bearer token from this file (default: ${env})"
    )
    options.add_argument("--token", nargs="?", action=_RefuseTokenFlag, help=argparse.SUPPRESS)
    options.set_defaults(role=role)
    return options


def token(args: argparse.Namespace) -> str | None:
    """The token for this command: ``--token-file``, else the environment variable of its role."""
    if args.token_file:
        try:
            text = Path(args.token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise Usage(f"cannot read --token-file {args.token_file}: {exc.__class__.__name__}") from None
        if not text:
            raise Usage(f"--token-file {args.token_file} is empty")
        return text
    if args.role == "approver":
        return os.environ.get(APPROVER_ENV) or None
    if args.role == "webhook":
        return os.environ.get(READ_ENV) or None
    return os.environ.get(READ_ENV) or os.environ.get(APPROVER_ENV) or None


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # the JSON document, or the text when asked for text

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Service:
    """A running service at ``base`` (no trailing slash), called with ``bearer``."""

    base: str
    bearer: str | None
    role: Role

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Service:
        return cls(str(args.url).rstrip("/"), token(args), args.role)

    def get(self, path: str, query: dict[str, Any] | None = None, *, text: bool = False) -> Any:
        """The body of a GET that answered 2xx; anything else is a ``Failure``."""
        return self.expect(self.call("GET", path, query=query, text=text))

    def post(self, path: str, body: dict[str, Any] | bytes | None = None) -> Any:
        return self.expect(self.call("POST", path, body=body))

    def call(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | bytes | None = None,
        text: bool = False,
    ) -> Answer:
        """One request; the answer whatever its status. Unreachable → ``Failure``."""
        url = self.base + path
        wanted = {k: v for k, v in (query or {}).items() if v is not None}
        if wanted:
            url += "?" + urllib.parse.urlencode(wanted)
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 — the operator's URL
        if body is not None:  # a dict, or a captured payload as it was sent
            request.add_header("Content-Type", "application/json")
        if self.bearer:
            request.add_header("Authorization", f"Bearer {self.bearer}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                return Answer(response.status, _decode(response.read(), text=text))
        except urllib.error.HTTPError as exc:
            return Answer(exc.code, _decode(exc.read(), text=False))
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise Failure(f"cannot reach {self.base}: {reason}") from None

    def expect(self, answer: Answer) -> Any:
        if answer.ok:
            return answer.body
        raise Failure(self.refusal(answer))

    def refusal(self, answer: Answer) -> str:
        """What the service said no with, and for 401/403 where the token comes from."""
        body = answer.body
        said = body.get("error") if isinstance(body, dict) else None
        message = f"{answer.status}: {said or str(body)[:500] or 'no answer body'}"
        if answer.status in (401, 403):
            env = APPROVER_ENV if self.role == "approver" else READ_ENV
            message += f" (the token comes from --token-file or ${env})"
        return message


def _decode(data: bytes, *, text: bool) -> Any:
    if text:
        return data.decode("utf-8", errors="replace")
    try:
        return json.loads(data) if data else None
    except ValueError:
        return data.decode("utf-8", errors="replace")


def quote(value: str) -> str:
    """One path segment."""
    return urllib.parse.quote(value, safe="")
