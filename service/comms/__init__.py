"""Customer communication: the drafts (pure templates) and the two ways out — Atlassian Statuspage and email.

``drafts`` writes what customers read from an incident's facts, never an internal name or a label value that
is not allow-listed; ``statuspage`` and ``email`` send a draft and translate their failures to
``errors.Transient``/``errors.Permanent``; ``publish`` picks the one a draft's kind needs. Whether a draft may
be sent (once, by whom) is the comms table's compare-and-set and the lifecycle's, never this package's.
"""
