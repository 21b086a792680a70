"""The pipeline: the only module that calls every stage in order, for one inbox row.

firing:   rule (matched at intake) → render target → open or attach incident ─(commit)─► diagnose (probes,
          concurrently) ─(commit)─► decide → act under the guards → verify → mitigated, or escalate
          (bundle → outbox); inbox row done
resolved: find the incident of the episode → mark the alert resolved → resolve the incident when no
          alert of it still fires (timeline, MTTR, resolve notification)
approved: a proposal a human approved runs through the engine's own path (``run_approved``)

The inbox row stays claimed until the incident it opened is escalated or mitigated: if the process dies
during diagnosis, the row is claimed again and the diagnosis of the incident it opened (``opened_by``) is
run again — probes only read, so repeating them is safe; if it dies while acting, the action's result is
unknown and never repeated. Every state change goes through ``service.lifecycle`` in the caller's
transaction, the row's own "done" included.
"""

from service.pipeline.flow import Pipeline

__all__ = ["Pipeline"]
