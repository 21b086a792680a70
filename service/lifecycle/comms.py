"""Customer communication on the runbooks' clock: drafts, reminders and publishing (``comms_published``).
(Engineer I fills this part.)"""

from __future__ import annotations

from service.lifecycle.core import Core


class Comms(Core):
    """Customer-communication transitions of the incident's life."""
