"""Pure renderers of an incident for humans and channels: no I/O, no clock (time comes in as arguments).

``slack`` (Block Kit payload), ``pagerduty`` (Events API v2 body) and ``markdown`` render the bundle
document (``Bundle.model_dump(mode="json")``, as the channels receive it from the outbox); ``report`` renders
the incident detail as the post-mortem report; ``text`` holds the shared escaping, truncation and link
helpers. User data is escaped for each target and links are http(s) only, shown and never fetched.
"""
