"""The incident's life, one owner: every state change and timeline event of an incident, and the
notifications each implies, happen in ``transitions`` (and its timers in ``timers``) — nowhere else.

Where does an incident change state? ``service/lifecycle/transitions.py``.
"""
