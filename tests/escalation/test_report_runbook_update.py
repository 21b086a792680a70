"""The report's "Runbook update" section: what an incident taught, as the runbooks' monthly update reads it."""

from __future__ import annotations

from typing import Any

from service.escalation.render import report
from service.model import rules
from service.records.store import iso
from tests.escalation.test_render_markdown import OPENED
from tests.escalation.test_report import RESTART, detail, event

CHECKLIST = rules.DEFAULT_CHECKLIST.items()


def action(number: int, name: str, status: str, **fields: Any) -> dict[str, Any]:
    return {**RESTART, "id": f"act{number}", "action": name, "status": status, "reason": None, **fields}


def finding(probe_id: str, probe: str, status: str, summary: str) -> dict[str, Any]:
    return {"id": probe_id, "probe": probe, "status": status, "summary": summary, "facts": {}, "evidence": ""}


def section_of(source: dict[str, Any], *, checklist: Any = CHECKLIST) -> str:
    text = report.render(source, None, checklist=checklist, now=OPENED + 3600)
    assert "## Runbook update" in text
    tail = text.split("## Runbook update", 1)[1]
    assert "\n## " not in tail, "the runbook update is the report's last section"
    return tail


def taught() -> dict[str, Any]:
    """A database incident: one probe errored, one was skipped, a guard held the restart, humans took over."""
    opening = [
        finding("pods", "kube.pods", "failed", "0/3 ready, 3 crashlooping"),
        finding("db", "postgres.ping", "error", "password authentication failed for user remediator"),
        finding("replication", "postgres.replication", "skipped", "skipped: db is not reachable"),
        finding("health", "http.get", "ok", "200 in 4 ms"),
    ]
    later = [finding("pods", "kube.pods", "ok", "3/3 ready"), *opening[1:]]
    return detail(
        rule="database-failure",
        state="resolved",
        escalated_at=iso(OPENED + 60),
        resolved_at=iso(OPENED + 1800),
        rounds=[
            {"round": 1, "phase": "diagnose", "at": iso(OPENED + 5), "findings": opening},
            {"round": 2, "phase": "check", "at": iso(OPENED + 900), "findings": later},
        ],
        findings=later,
        actions=[
            action(
                1,
                "kube.rollout_restart",
                "blocked",
                guard="cooldown",
                reason="restarted 4 min ago (cooldown 10 min)",
            ),
            action(2, "kube.rollout_undo", "succeeded", safety="unsafe", approver="alice"),
            action(3, "postgres.promote_replica", "rejected", safety="unsafe", approver="bob"),
            action(4, "kube.delete_pods", "awaiting_approval", safety="unsafe"),
        ],
        timeline=[
            event(0, "incident.opened", "DatabaseDown matched rule database-failure"),
            event(300, "incident.acknowledged", "acknowledged by alice", {"by": "alice", "level": 1}),
            event(400, "action.approved", "kube.rollout_undo approved by alice", {"approver": "alice"}),
            event(500, "checklist.ticked", "ticked", {"item": "service-fully-restored", "by": "alice"}),
        ],
    )


def test_the_report_ends_with_what_the_incident_taught() -> None:
    section = section_of(taught())

    assert "rule `database-failure`" in section
    probes = section.split("### Probes that failed, errored or were skipped\n\n", 1)[1].split("\n\n", 1)[0]
    assert probes.splitlines() == [
        "- `pods` (`kube.pods`) — **failed**, found the fault: 0/3 ready, 3 crashlooping",
        "- `db` (`postgres.ping`) — **error**, the probe itself failed: fix its params or the access it needs:"
        " password authentication failed for user remediator",
        "- `replication` (`postgres.replication`) — **skipped**, did not run: check why (dependency down,"
        " deadline, invalid target): skipped: db is not reachable",
    ]  # the healthy probe is no lesson
    assert (
        "### Guards that blocked automatic actions\n\n"
        "- `kube.rollout_restart` blocked by `cooldown`: restarted 4 min ago \\(cooldown 10 min\\)"
    ) in section
    assert (
        "### Proposals humans decided\n\n"
        "- `kube.rollout_undo` **approved** by alice (it succeeded) — a candidate to make `safe`\n"
        "- `postgres.promote_replica` **rejected** by bob: keep it a proposal, or drop it from the rule\n"
        "- `kube.delete_pods` proposed, **never decided**: should the runbook drop or reword it?"
    ) in section
    assert "### Steps humans took\n\n- +5 min `incident.acknowledged` acknowledged by alice\n" in section


def test_open_checklist_items_are_listed_and_ticked_ones_are_not() -> None:
    section = section_of(taught())
    open_items = section.split("### Checklist items still open\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert len(open_items) == len(CHECKLIST) - 1
    assert open_items[0] == "- Monitoring normal — Immediate (0-1 hour)"
    assert "- Runbooks updated — Short-term (1-24 hours)" in open_items
    assert not any("Service fully restored" in line for line in open_items)


def test_an_incident_with_nothing_to_teach_says_so() -> None:
    everything_ticked = [
        event(100 + n, "checklist.ticked", "ticked", {"item": item.id, "by": "alice"})
        for n, item in enumerate(CHECKLIST)
    ]
    source = detail(
        findings=[finding("pods", "kube.pods", "ok", "3/3 ready")], actions=[], timeline=everything_ticked
    )
    section = section_of(source)
    assert "_Nothing to update: every probe answered, nothing was blocked or done by hand._" in section
    assert "###" not in section


def test_a_drills_forced_dry_run_is_no_lesson_but_its_other_guards_are() -> None:
    source = taught()
    source["drill"] = True
    source["actions"] = [
        action(1, "kube.rollout_restart", "skipped", guard="dry_run", reason="dry run: nothing was written"),
        action(2, "kube.scale", "blocked", guard="blast_radius", reason="an HPA owns the scale"),
    ]
    section = section_of(source)
    assert "`dry_run`" not in section
    assert "- `kube.scale` blocked by `blast_radius`: an HPA owns the scale" in section

    source["drill"] = False  # outside a drill, a dry-run switch left on is worth a line
    assert "- `kube.rollout_restart` blocked by `dry_run`" in section_of(source)


def test_hostile_summaries_and_names_stay_text() -> None:
    source = taught()
    source["rounds"][0]["findings"][1]["summary"] = "[click](https://evil.example) <img src=x> `rm -rf /`"
    source["findings"][1]["summary"] = source["rounds"][0]["findings"][1]["summary"]
    source["actions"][1]["approver"] = "eve](https://evil.example)"
    section = section_of(source)
    assert "](https://evil.example)" not in section
    assert "<img" not in section
    assert "\\[click\\]" in section and "&lt;img src=x&gt;" in section


def test_an_approved_fix_that_failed_is_no_candidate_to_make_safe() -> None:
    source = taught()
    source["actions"] = [action(2, "kube.rollout_undo", "failed", safety="unsafe", approver="alice")]
    section = section_of(source)
    assert "- `kube.rollout_undo` **approved** by alice (it failed)\n" in section
    assert "candidate" not in section
