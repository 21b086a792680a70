"""The remediation actions, one module each; ``service.remediation.registry`` lists them by name.

Every action is ``async def action(ctx, params) -> Outcome`` with its params model in the signature, and runs
the same way:

1. **Check** (reads only): the blast-radius checks of its module docstring. ``preflight`` runs them
   and returns the refusal as text; ``run`` runs them again right before writing (the cluster may have
   changed since) and raises ``errors.Blocked("preflight", reason)`` — the same words.
2. **Build** the exact request(s): method, API path (or the PostgreSQL server), body, content type.
3. **Dry-run** (``ctx.dry_run``): return ``Outcome(ok=True, summary="dry-run: would …", requests,
   sent=False)``; no write reaches the API or the database (the reads of step 1 do).
4. **Send** exactly those requests, and return them with ``result``: facts read from the answer
   (new generation, replicas, terminated pids…).

Refusals are raised, never returned: a failed check is ``errors.Blocked("preflight", …)``, an eviction refused
by a PodDisruptionBudget is ``errors.Blocked("pdb", <the API's message>)``; the pipeline treats them like a
guard's refusal. API and database failures are ``errors.Transient`` / ``errors.Permanent`` from the client
adapters. ``ok=False`` means the write was sent and accepted but did not have its effect in time
(``postgres.promote_replica`` when the server is still in recovery after waiting).

Names reach a path only from the validated target (``ctx.target``) or validated params (``Name``,
``Selector``). No action runs a shell, retries a write, or falls back to a more forceful one.
"""
