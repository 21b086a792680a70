"""Send one stored draft the way its kind goes out: a status-page draft opens the page's incident the first
time (``previous`` is None) and updates it after; an email draft is one message to the configured list.
Returns the external id to keep (the Statuspage incident id, the SMTP server's answer); raises
``errors.Transient``/``errors.Permanent`` as the senders translate them. Whether the draft may be sent is the
caller's compare-and-set, never decided here.
"""

from __future__ import annotations

from service import errors
from service.clients import sessions
from service.comms import drafts, email, statuspage
from service.settings import Settings


def smtp(settings: Settings) -> email.Smtp:
    """The SMTP settings as the email sender takes them."""
    return email.Smtp(
        host=settings.smtp_host,
        port=settings.smtp_port,
        sender=settings.smtp_from,
        recipients=tuple(settings.smtp_to),
        starttls=settings.smtp_starttls,
        username=settings.smtp_username,
        password_file=settings.smtp_password_file,
    )


async def deliver(settings: Settings, draft: drafts.Draft, *, severity: str, previous: str | None) -> str:
    """Send ``draft``; the external id to keep."""
    if draft.kind == "email":
        return await email.send(draft, smtp(settings))
    if draft.kind != "statuspage":
        raise errors.Permanent(f"drafts of kind {draft.kind!r} are not published by the service")
    if not settings.statuspage_page_id:
        raise errors.Permanent("the status page is not configured (REMEDIATOR_STATUSPAGE_PAGE_ID)")
    key = statuspage.read_key(settings.statuspage_api_key_file)
    async with sessions.new_session() as session:
        page = statuspage.Statuspage(
            session,
            base_url=settings.statuspage_url,
            page_id=settings.statuspage_page_id,
            api_key=key,
            component_id=settings.statuspage_component_id,
        )
        if previous is None:
            return await page.create(draft, severity=severity)
        return await page.update(previous, draft, severity=severity)
