"""The remediation engine: read the guard state, decide (pure), then act under the lock and verify.

Order for one incident: guards are read (coordination + blast-radius preflights, reads only) → ``decide`` →
for the chosen safe action: take the target lock, a budget slot and a storm-brake seat, journal the intent
(committed), record the attempt, run the action, journal the result, then re-run the verify probe until it
passes or ``within`` expires (with ``verify.advances``, the named counters must grow too). Anything that
cannot be done safely ends in an escalation with the reason.
If coordination is unreachable, nothing automatic runs (fail closed).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from pydantic import ValidationError

from service import errors
from service.clients.hub import Clients
from service.decision import advances
from service.decision import dependencies as deps
from service.decision import plan as planning
from service.diagnosis import runner
from service.diagnosis.base import ProbeDef
from service.matching import templates
from service.matching.loader import CompiledRule
from service.model import incidents
from service.model.rules import ActionSpec
from service.observability import Metrics
from service.records import actions as journal
from service.records import dependencies as open_incidents
from service.records import switches, windows
from service.records.coordination import Coordination, CoordinationUnavailable
from service.records.ids import new_id
from service.records.store import Store
from service.remediation.base import ActionContext, ActionDef, Outcome

log = structlog.get_logger(__name__)

#: How long a "not paused" reading of the stored kill switch, or a "no maintenance window in force" one,
#: stands in for the guards of the incidents decided after it (s). A storm decides ~1,000 incidents a few ms
#: apart: one read per interval instead of one per incident. Safe because both are read again, fresh, right
#: before an automatic action starts (``_paused_now``): an action that starts after a pause or a window is
#: committed is always stopped; only the *decision* of an incident in this interval may still plan the action
#: (which the fresh read then blocks, journaled as ``paused``). A "paused" reading, or a window in force, is
#: never reused: resuming takes effect for the very next incident.
KILL_SWITCH_STALENESS_S = 0.5


@dataclass(frozen=True)
class Policy:
    """The guard settings (DESIGN §3.5)."""

    dry_run: bool = False
    namespaces: frozenset[str] | None = None
    budget: tuple[int, float] = (10, 600.0)
    budget_text: str = "10/10m"
    storm_brake: int = 5
    flap_window_s: float = 1800.0
    action_timeout_s: float = 30.0
    verify_interval_s: float = 5.0
    lock_lease_s: float = 300.0


def target_key(rule: CompiledRule, target: incidents.TargetRef) -> str:
    return f"{rule.rule.name}|{target.key}"


@dataclass(frozen=True)
class _Run:
    """One step being executed: what every stage under the lock needs, built once in ``_execute``."""

    incident_id: str
    spec: ActionSpec
    key: str  # the guard key of this action on this target (cooldown, attempts)
    target: incidents.TargetRef
    definition: ActionDef
    params: Any
    base: dict[str, Any]  # the fields every journal write of the step carries
    action_id: str
    new: bool  # automatic (a new journal record) rather than approved (the proposal's record)
    prepared: Prepared  # the rule and target (the maintenance window read right before the step starts)


@dataclass(frozen=True)
class Prepared:
    """One alert's remediation steps with their params rendered and validated once: what the guards, the
    preflights, the journal and the execution of any step all read (``Engine.prepare``)."""

    rule: CompiledRule
    target: incidents.TargetRef
    context: Mapping[str, Any]
    params: tuple[tuple[Any, str | None], ...]  # per ``remediate`` index: (validated params, or the problem)

    @property
    def key(self) -> str:
        return target_key(self.rule, self.target)


@dataclass
class Engine:
    store: Store
    coordination: Coordination
    actions: Mapping[str, ActionDef]
    probes: Mapping[str, ProbeDef]
    clients: Clients
    policy: Policy
    limits: runner.Limits
    owner: str
    clock: Callable[[], float] = time.time
    #: counts actions by outcome, guard refusals and probes (None: counted nowhere, as in unit tests)
    metrics: Metrics | None = None
    #: monotonic time of the last stored-kill-switch read that said "not paused" (``_stored_pause``)
    _not_paused_at: float = field(default=float("-inf"), init=False, repr=False, compare=False)
    #: monotonic time of the last read that found no maintenance window in force (``_windows``)
    _no_window_at: float = field(default=float("-inf"), init=False, repr=False, compare=False)

    async def _windows(self, now: float, *, fresh: bool) -> list[windows.Window]:
        """The maintenance windows in force; unless ``fresh``, a read that found none less than
        ``KILL_SWITCH_STALENESS_S`` ago is reused (a window in force is always read again)."""
        if not fresh and time.monotonic() - self._no_window_at < KILL_SWITCH_STALENESS_S:
            return []
        found = await windows.active(self.store, now)
        self._no_window_at = float("-inf") if found else time.monotonic()
        return found

    async def _stored_pause(self, *, fresh: bool) -> bool:
        """The stored kill switch; unless ``fresh``, a "not paused" read less than ``KILL_SWITCH_STALENESS_S``
        old is reused (see there for why that is safe)."""
        if not fresh and time.monotonic() - self._not_paused_at < KILL_SWITCH_STALENESS_S:
            return False
        paused = await switches.paused(self.store)
        self._not_paused_at = float("-inf") if paused else time.monotonic()
        return paused

    def params_for(
        self, rule: CompiledRule, index: int, context: Mapping[str, Any]
    ) -> tuple[Any, str | None]:
        """The validated params of ``rule.remediate[index]`` (or the reason they are not valid)."""
        spec = rule.rule.remediate[index]
        definition = self.actions.get(spec.action)
        if definition is None:
            return None, f"unknown action {spec.action}"
        try:
            rendered = templates.render_params(rule.remediate_params[index], context)
            return definition.params.model_validate(rendered), None
        except (templates.TemplateError, ValidationError) as exc:
            return None, f"bad params: {exc}".splitlines()[0][:300]

    def prepare(
        self, rule: CompiledRule, target: incidents.TargetRef, context: Mapping[str, Any]
    ) -> Prepared:
        """Render and validate the params of every step of ``rule`` for this alert, once."""
        params = tuple(self.params_for(rule, index, context) for index in range(len(rule.rule.remediate)))
        return Prepared(rule, target, context, params)

    async def guards(
        self,
        prepared: Prepared,
        *,
        truncated: int,
        now: float,
        found: Sequence[incidents.Finding] = (),
        clients: Clients | None = None,
    ) -> planning.GuardState:
        """Read every guard's input. Coordination errors make the state fail closed.

        ``clients``: what the blast-radius preflights read through (an opening shares its diagnosis' reads:
        ``pipeline.reads``); the engine's own by default. The action re-reads fresh before it writes.

        ``found``: the findings the plan is decided on; with the open incidents of depended-on rules they
        give the ``dependency`` guard its input (``dependencies``)."""
        rule, target = prepared.rule, prepared.target
        radius: dict[str, str | None] = {}
        for index, spec in enumerate(rule.rule.remediate):
            if spec.safety != "safe" or not target.valid or spec.action in radius:
                continue
            radius[spec.action] = await self.preflight(prepared, index, clients=clients)
        state = await self._coordination_state(prepared, now)
        return planning.GuardState(
            target=target,
            dry_run=self.policy.dry_run,
            allowed_namespaces=self.policy.namespaces,
            truncated=truncated,
            budget=self.policy.budget_text,
            storm_brake=self.policy.storm_brake,
            flap_window_s=self.policy.flap_window_s,
            blast_radius=radius,
            dependencies=await self.dependencies(prepared, found),
            window=await self.window(prepared, now),
            **state,
        )

    async def _coordination_state(self, prepared: Prepared, now: float) -> dict[str, Any]:
        """The guards' inputs kept in coordination (pause, last actions, attempts, budget, acting, last
        mitigation); ``{"coordination_ok": False}`` when coordination cannot answer (fail closed)."""
        rule, key = prepared.rule, prepared.key
        try:
            paused, _by, _since = await self.coordination.paused()
            paused = paused or await self._stored_pause(fresh=False)
            last = {
                s.action: await self.coordination.last_action(f"{key}|{s.action}")
                for s in rule.rule.remediate
            }
            attempts = {
                s.action: await self.coordination.attempts(
                    f"{key}|{s.action}", now=now, window_s=s.max_attempts.per.total_seconds()
                )
                for s in rule.rule.remediate
            }
            limit, window = self.policy.budget
            used = await self.coordination.budget_used(now=now, window_s=window)
            return {
                "paused": paused,
                "last_action": last,
                "attempts": attempts,
                "budget_left": limit - used,
                "acting": await self.coordination.acting(now=now),
                "last_mitigated": await self.coordination.last_mitigated(key),
            }
        except CoordinationUnavailable as exc:
            log.warning("coordination.unavailable", reason=str(exc))
            return {"coordination_ok": False}

    async def window(self, prepared: Prepared, now: float, *, fresh: bool = False) -> str | None:
        """The maintenance window in force on this rule or target, as a human reads it; None: none is.
        ``fresh``: read now, never a reused "none in force" (``_windows``)."""
        target = prepared.target
        for window in await self._windows(now, fresh=fresh):
            if window.covers(
                rule=prepared.rule.rule.name, kind=target.kind, namespace=target.namespace, name=target.name
            ):
                return window.sentence()
        return None

    async def dependencies(self, prepared: Prepared, found: Sequence[incidents.Finding]) -> dict[str, str]:
        """The rule's failing dependencies → the sentence a human reads: its dependency probes whose finding
        is ``failed`` or ``error`` (unknown is not healthy: ``decision.dependencies``), and the open incidents
        of the rules it depends on in the target's namespace."""
        rule, target = prepared.rule.rule, prepared.target
        causes: list[open_incidents.Cause] = []
        if rule.dependency_rules() and target.valid:
            async with self.store.read() as conn:
                causes = await open_incidents.open_causes(
                    conn, rules=rule.dependency_rules(), namespace=target.namespace
                )
        return deps.failing(rule, found, causes)

    async def preflight(
        self, prepared: Prepared, index: int, *, clients: Clients | None = None
    ) -> str | None:
        """The blast-radius refusal of step ``index`` on the target (reads only), or None."""
        spec, target = prepared.rule.rule.remediate[index], prepared.target
        definition = self.actions.get(spec.action)
        params, problem = prepared.params[index]
        if definition is None or problem is not None:
            return problem or f"unknown action {spec.action}"
        if definition.preflight is None:
            return None
        try:
            context = self._context(target, dry_run=True, quorum=spec.quorum, clients=clients)
            return await definition.preflight(context, params)
        except errors.RemediatorError as exc:
            return f"could not check the blast radius: {exc}"

    def _context(
        self,
        target: incidents.TargetRef,
        *,
        dry_run: bool,
        quorum: int | None = None,
        clients: Clients | None = None,
    ) -> ActionContext:
        return ActionContext(
            target=target,
            clients=clients or self.clients,
            timeout_s=self.policy.action_timeout_s,
            dry_run=dry_run,
            quorum=quorum,
        )

    async def execute(
        self,
        incident_id: str,
        prepared: Prepared,
        step: planning.Step,
        *,
        approver: str | None = None,
        action_id: str | None = None,
        round_: int | None = None,
    ) -> tuple[str, Outcome | None, str]:
        """Run one step under the guards; (status, outcome, the journaled reason a human reads).

        ``round_``: the findings round the step acted on, journaled with a new record."""
        action_id = action_id or new_id(self.clock())
        status, outcome = await self._execute(
            incident_id, prepared, step, approver=approver, action_id=action_id, round_=round_
        )
        async with self.store.read() as conn:
            row = await journal.get(conn, incident_id, action_id)
        self._count(step.action, status, (row or {}).get("guard") if status == "blocked" else None)
        return status, outcome, str((row or {}).get("reason") or status)

    async def run_approved(
        self,
        incident_id: str,
        prepared: Prepared,
        step: planning.Step,
        *,
        approver: str,
        action_id: str,
    ) -> str:
        """Run a step a human approved through the same path as an automatic one (``execute``), after the
        guards an approval does not lift (``planning.approval_block``); a refusal is journaled with its
        code."""
        target = prepared.target
        radius = await self.preflight(prepared, step.index) if target.valid else None
        block = planning.approval_block(
            target, allowed_namespaces=self.policy.namespaces, blast_radius=radius
        )
        if block is not None:
            async with self.store.write() as conn:
                await journal.update(conn, action_id, status="blocked", guard=block[0], reason=block[1])
            self._count(step.action, "blocked", block[0])
            return "blocked"
        status, _outcome, _reason = await self.execute(
            incident_id, prepared, step, approver=approver, action_id=action_id
        )
        return status

    async def _execute(
        self,
        incident_id: str,
        prepared: Prepared,
        step: planning.Step,
        *,
        approver: str | None = None,
        action_id: str | None = None,
        round_: int | None = None,
    ) -> tuple[str, Outcome | None]:
        """Lock, budget, storm seat, intent, run, result. Returns (status, outcome) — status as journaled."""
        spec, target = prepared.rule.rule.remediate[step.index], prepared.target
        definition = self.actions[spec.action]
        params, problem = prepared.params[step.index]
        action_id = action_id or new_id(self.clock())
        run = _Run(
            incident_id=incident_id,
            spec=spec,
            key=f"{prepared.key}|{spec.action}",
            target=target,
            definition=definition,
            params=params,
            base=self._record_base(incident_id, step, spec, params, action_id, approver, round_),
            action_id=action_id,
            new=approver is None,
            prepared=prepared,
        )
        if problem is not None:
            await self._journal(run.base, action_id, status="failed", reason=problem, new=run.new)
            return "failed", None
        lock = f"lock|{target.key}"
        if not await self._lock(run, lock):
            return "blocked", None
        try:
            return await self._locked(run)
        finally:
            try:
                await self.coordination.release_lock(lock, self.owner)
                await self.coordination.leave_acting(incident_id)
            except CoordinationUnavailable:
                log.warning("coordination.release_failed", lock=lock)

    def _record_base(
        self,
        incident_id: str,
        step: planning.Step,
        spec: ActionSpec,
        params: Any,
        action_id: str,
        approver: str | None,
        round_: int | None,
    ) -> dict[str, Any]:
        """The fields every journal write of this step carries."""
        base = {
            "id": action_id,
            "incident_id": incident_id,
            "idx": step.index,
            "action": spec.action,
            "safety": spec.safety,
            "params": params.model_dump(mode="json") if params else {},
            "dry_run": self.policy.dry_run,
            "requested_at": self.clock(),
            "approver": approver,
        }
        if round_ is not None:  # absent, an approved step keeps the round its proposal was journaled with
            base["round"] = round_
        return base

    async def _lock(self, run: _Run, lock: str) -> bool:
        """Take the target lock; journal why not when it cannot be taken."""
        try:
            if await self.coordination.acquire_lock(lock, self.owner, lease_s=self.policy.lock_lease_s):
                return True
            await self._blocked(run, "lock", "lock: another actor is working on this target")
        except CoordinationUnavailable:
            await self._blocked(
                run,
                "coordination_unavailable",
                "coordination unavailable: no action without the target lock",
            )
        return False

    async def _blocked(self, run: _Run, guard: str, reason: str) -> None:
        await self._journal(
            run.base, run.action_id, status="blocked", guard=guard, reason=reason, new=run.new
        )

    async def _locked(self, run: _Run) -> tuple[str, Outcome | None]:
        """Under the target lock: budget and storm seat (automatic steps), intent, run, result."""
        now = self.clock()
        if run.new and await self._paused_now(run, now):
            return "blocked", None
        if run.new and not self.policy.dry_run and not await self._admit(run, now):
            return "blocked", None
        # the intent is committed before anything is sent; a crash from here on leaves it "running" → unknown
        await self._journal(run.base, run.action_id, status="running", started_at=self.clock(), new=run.new)
        if not self.policy.dry_run:
            try:
                keep = max(run.spec.cooldown.total_seconds(), run.spec.max_attempts.per.total_seconds())
                await self.coordination.record_action(run.key, now=now, keep_s=keep)
            except CoordinationUnavailable:
                log.warning("coordination.record_failed", key=run.key)
        return await self._run(run)

    async def _paused_now(self, run: _Run, now: float) -> bool:
        """The kill switch (the coordination's and the stored one) and the maintenance windows, read fresh
        right before an automatic step starts, whatever the guards read (``KILL_SWITCH_STALENESS_S``): a
        pause or window committed before this point stops it; journal why."""
        try:
            paused, _by, _since = await self.coordination.paused()
        except CoordinationUnavailable:
            await self._blocked(run, "coordination_unavailable", "coordination unavailable")
            return True
        if paused or await self._stored_pause(fresh=True):
            await self._blocked(run, "paused", "automatic actions are paused (kill switch)")
            return True
        window = await self.window(run.prepared, now, fresh=True)
        if window is not None:
            await self._blocked(run, "paused", window)
            return True
        return False

    async def _admit(self, run: _Run, now: float) -> bool:
        """Take a budget slot and a storm-brake seat for an automatic step; journal why not."""
        limit, window = self.policy.budget
        try:
            if not await self.coordination.take_budget(now=now, window_s=window, limit=limit):
                await self._blocked(run, "budget", f"budget: the {self.policy.budget_text} budget is spent")
                return False
            seats = await self.coordination.enter_acting(
                run.incident_id, now=now, ttl_s=self.policy.lock_lease_s
            )
            if seats > self.policy.storm_brake:
                await self._blocked(run, "storm_brake", f"storm brake: {seats} incidents acting at once")
                return False
        except CoordinationUnavailable:
            await self._blocked(run, "coordination_unavailable", "coordination unavailable")
            return False
        return True

    async def _run(self, run: _Run) -> tuple[str, Outcome | None]:
        """Run the action and journal its result."""
        try:
            context = self._context(run.target, dry_run=self.policy.dry_run, quorum=run.spec.quorum)
            outcome = await run.definition.run(context, run.params)
        except errors.Blocked as exc:
            await self._finish(run.action_id, "blocked", guard=exc.guard, reason=exc.reason)
            return "blocked", None
        except errors.RemediatorError as exc:
            await self._finish(run.action_id, "failed", reason=str(exc))
            return "failed", None
        except Exception as exc:  # an action bug: record it, never retry blindly
            log.exception("action.crashed", action=run.spec.action)
            await self._finish(run.action_id, "failed", reason=f"{type(exc).__name__}: {exc}")
            return "failed", None
        status = "skipped" if self.policy.dry_run else ("succeeded" if outcome.ok else "failed")
        await self._finish(
            run.action_id,
            status,
            guard="dry_run" if self.policy.dry_run else None,
            reason=outcome.summary,
            request=[r.as_dict() for r in outcome.requests],
            result=outcome.result,
        )
        return status, outcome

    async def _journal(
        self, base: dict[str, Any], action_id: str, *, status: str, new: bool, **values: Any
    ) -> None:
        """Write the step's record: a new one (automatic), or the proposal's own (approved) — with the same
        fields either way, so an approved step and an automatic one journal alike."""
        async with self.store.write() as conn:
            if new:
                await journal.add(conn, {**base, "status": status, **values})
            else:
                same = {k: v for k, v in base.items() if k not in ("id", "incident_id", "requested_at")}
                await journal.update(conn, action_id, **{**same, "status": status, **values})

    async def _finish(self, action_id: str, status: str, **values: Any) -> None:
        async with self.store.write() as conn:
            await journal.update(conn, action_id, status=status, finished_at=self.clock(), **values)

    def _count(self, action: str, outcome: str, guard: str | None = None) -> None:
        """One terminal outcome of an action (its journal status, or ``verified``/``not_verified``); a
        ``blocked`` one is also a refusal by its guard."""
        if self.metrics is None:
            return
        self.metrics.actions.labels(action=action, outcome=outcome).inc()
        if outcome == "blocked":
            self.metrics.guard_refusals.labels(guard=guard or "unknown").inc()

    async def record_plan(
        self,
        conn: Any,
        incident_id: str,
        result: planning.Plan,
        prepared: Prepared,
        *,
        now: float,
        escalating: bool,
        round_: int | None = None,
    ) -> None:
        """Journal the blocked steps, and the proposals when the incident is escalated; ``round_`` is the
        findings round the plan was decided on."""
        for step in result.steps:
            if step.status == "blocked":
                self._count(step.action, "blocked", step.guard)
            if step.status == "blocked" or (step.status == "awaiting_approval" and escalating):
                params, _ = prepared.params[step.index]
                await journal.add(
                    conn,
                    {
                        "id": new_id(now),
                        "incident_id": incident_id,
                        "idx": step.index,
                        "action": step.action,
                        "safety": step.safety,
                        "status": step.status,
                        "guard": step.guard,
                        "reason": step.reason,
                        "params": params.model_dump(mode="json") if params is not None else {},
                        "dry_run": self.policy.dry_run,
                        "requested_at": now,
                        "round": round_,
                    },
                )

    async def verify(
        self,
        prepared: Prepared,
        step: planning.Step,
        *,
        acted_on: Sequence[incidents.Finding] = (),
    ) -> tuple[bool, list[incidents.Finding]]:
        """Re-run the verify probe, and every probe ``verify.advances`` names, each interval until the verify
        probe is ok AND every advancing fact grew past its baseline (its value in ``acted_on``, the findings
        the step was decided on, else in the first sample), or ``within`` expires; (passed, last findings).

        The findings are the verify probe's, the advancing probes' and the ``advances`` check's
        (``decision.advances``). When verification fails, the first one says why: the verify probe's own
        finding when it is not ok, else the check's ("consensus.height did not advance: 1200 → 1200")."""
        spec = prepared.rule.rule.remediate[step.index].verify
        if spec is None:
            return True, []
        deadline = self.clock() + spec.within.total_seconds()
        baseline = advances.baselines(spec.advances, acted_on)
        while True:
            found = await self._sample(prepared, [spec.probe, *advances.probe_ids(spec.advances)])
            passed, found, baseline = _judge(spec.probe, spec.advances, baseline, found)
            if passed or self.clock() + self.policy.verify_interval_s > deadline:
                self._count(step.action, "verified" if passed else "not_verified")
                return passed, found
            await asyncio.sleep(self.policy.verify_interval_s)

    async def _sample(self, prepared: Prepared, ids: Sequence[str]) -> list[incidents.Finding]:
        """One run of the rule's probes ``ids`` (each once, in that order; unknown ids are left out)."""
        rule, target, context = prepared.rule, prepared.target, prepared.context
        index = {p.id: i for i, p in enumerate(rule.rule.diagnose)}
        planned = [
            runner.plan_probe(rule.rule.diagnose[index[i]], rule.diagnose_params[index[i]], context, target)
            for i in dict.fromkeys(ids)
            if i in index
        ]
        return await runner.run_all(
            planned,
            registry=self.probes,
            target=target,
            clients=self.clients,
            limits=self.limits,
            metrics=self.metrics,
        )


def _judge(
    probe: str,
    entries: Sequence[str],
    baseline: dict[str, float | None],
    found: list[incidents.Finding],
) -> tuple[bool, list[incidents.Finding], dict[str, float | None]]:
    """One verification sample: (passed, its findings with the reason first, the baseline filled in)."""
    main = next((f for f in found if f.id == probe), None)
    healthy = main is not None and main.status == "ok"
    if not entries:
        return healthy, found, baseline
    baseline = advances.fill(baseline, found)
    checked = advances.check(baseline, found)
    if healthy and checked.status != "ok":
        return False, [checked, *found], baseline
    return healthy and checked.status == "ok", [*found, checked], baseline


def plan_data(result: planning.Plan) -> dict[str, Any]:
    """The steps of a plan as the ``decision`` timeline event carries them."""
    return {
        "steps": [
            {"action": s.action, "status": s.status, "guard": s.guard, "reason": s.reason}
            for s in result.steps
        ]
    }


def action_records(rows: Sequence[dict[str, Any]]) -> list[incidents.ActionRecord]:
    """Journal rows as the bundle's ActionRecords."""
    out = []
    for row in rows:
        out.append(
            incidents.ActionRecord.model_validate(
                {
                    k: row[k]
                    for k in (
                        "id",
                        "action",
                        "safety",
                        "status",
                        "guard",
                        "reason",
                        "requested_at",
                        "started_at",
                        "finished_at",
                        "approver",
                    )
                }
                | {
                    "request": {"requests": row["request"]}
                    if isinstance(row["request"], list)
                    else row["request"],
                    "result": row["result"],
                }
            )
        )
    return out
