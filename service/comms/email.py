"""Email updates through SMTP (aiosmtplib): one message per published step, from ``REMEDIATOR_SMTP_FROM`` to
every address of ``REMEDIATOR_SMTP_TO``, upgraded with STARTTLS unless turned off, logging in with the user
and the password read from a file when a user is set. The password is never logged or put in an error.
Failures are translated here: connection problems and 4xx answers → ``errors.Transient``; refused
credentials or recipients and 5xx answers → ``errors.Permanent``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import aiosmtplib

from service import errors
from service.comms import drafts

TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Smtp:
    """Where and how email goes out."""

    host: str
    port: int
    sender: str
    recipients: Sequence[str]
    starttls: bool = True
    username: str = ""
    password_file: Path | None = None


def message(draft: drafts.Draft, smtp: Smtp) -> EmailMessage:
    """The message of a draft: its title the subject, its body the text."""
    mail = EmailMessage()
    mail["From"] = smtp.sender
    mail["To"] = ", ".join(smtp.recipients)
    mail["Subject"] = draft.title
    mail.set_content(draft.body)
    return mail


def _password(smtp: Smtp) -> str | None:
    if not smtp.username:
        return None
    if smtp.password_file is None:
        raise errors.Permanent("REMEDIATOR_SMTP_USERNAME is set without REMEDIATOR_SMTP_PASSWORD_FILE")
    try:
        return smtp.password_file.read_text().strip()
    except OSError as exc:
        raise errors.Permanent(f"cannot read the SMTP password file: {exc.strerror}") from exc


async def send(draft: drafts.Draft, smtp: Smtp) -> str:
    """Send the draft as one message; the server's answer (kept as the step's external id)."""
    if not smtp.host or not smtp.recipients:
        raise errors.Permanent("email is not configured (REMEDIATOR_SMTP_HOST and REMEDIATOR_SMTP_TO)")
    password = _password(smtp)
    try:
        _refused, answer = await aiosmtplib.send(
            message(draft, smtp),
            hostname=smtp.host,
            port=smtp.port,
            start_tls=smtp.starttls,
            username=smtp.username or None,
            password=password,
            timeout=TIMEOUT_S,
        )
    except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPRecipientsRefused) as exc:
        raise errors.Permanent(f"the SMTP server refused the message: {type(exc).__name__}") from exc
    except aiosmtplib.SMTPResponseException as exc:
        kind = errors.Permanent if exc.code >= 500 else errors.Transient
        raise kind(f"the SMTP server answered {exc.code}") from exc
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        raise errors.Transient(f"SMTP server unreachable: {type(exc).__name__}") from exc
    return answer[:128]
