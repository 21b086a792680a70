"""Remediation: the only writes to the outside world — actions, guards, the verify loop.

Every write goes through an action registered here, after the guards allowed it and the journal recorded the
intent. Nothing in this package runs a shell.
"""
