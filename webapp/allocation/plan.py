"""Plan versions: every change to a published plan is recorded as an amendment, checked and told to families.

`amend` is called by `webapp.allocation.service` at the end of each change, inside that call's transaction and
seat lock, with the seats as they stood before (`snapshot`). It compares the seats, and when they differ it

- runs the independent validator (`scheduler.validation`) on the new version and refuses the change
  (`RuleBroken`, nothing written) when it breaks a hard rule the previous version kept;
- bumps `Term.plan_version` and writes one `PlanAmendment` with a `PlanChange` per seat gained or lost;
- recomputes the reason of every uncovered pupil-day and the run's coverage figures (the solver's coverage
  bound is raised to the coverage reached when added seats cover more than the term it solved);
- queues one notification per family whose seats changed.

Pins. A pinned seat must stay in every version while the family still asks for its day and period; a pin
added after publication binds the next run, not the plan in force (it was never part of it).

A family's own change (withdrawing, dropping days, declining) can leave a session below its minimum size;
that is not refused (a family can always leave) but kept on the amendment as `violations` for the admin.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict

from sqlalchemy import delete, func, insert, select, update

from scheduler import domain
from scheduler.explain import explain_unserved
from scheduler.validation import recompute_objective, validate
from webapp import audit, run_summary
from webapp.allocation.waitlist import positions
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    AmendmentKind,
    CareRequest,
    Pin,
    PlanAmendment,
    PlanChange,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    Session,
    Term,
    utcnow,
)
from webapp.notifications import NotificationEvent, notify
from webapp.run_metrics import compute_metrics
from webapp.services import run_to_solution, term_to_instance

Seats = frozenset[tuple[int, int]]
"""(pupil_id, session_id) pairs of a run."""

FAMILY_KINDS = frozenset({AmendmentKind.WITHDRAWAL, AmendmentKind.CHANGE_REQUEST})


class RuleBroken(Exception):
    """The new version would break a hard rule; `problems` names them (English, for the admin)."""

    message = "This change would break a hard rule of the published plan, so nothing was changed."

    def __init__(self, problems: list[str]) -> None:
        super().__init__(self.message)
        self.problems = problems


def snapshot(run_id: int | None) -> Seats:
    """The seats of a run as they stand now in this transaction (empty for None)."""
    if run_id is None:
        return frozenset()
    db.session.flush()
    return frozenset((p, s) for p, s in db.session.execute(
        select(RunAssignment.pupil_id, RunAssignment.session_id).where(RunAssignment.run_id == run_id)))


def state(term: Term, run: AllocationRun) -> tuple[domain.Instance, domain.Solution]:
    """The instance and the run's solution as they stand now, to be checked now or later (`problems`)."""
    db.session.flush()
    return term_to_instance(term), run_to_solution(run)


def problems(term: Term, at: tuple[domain.Instance, domain.Solution], before: Seats) -> list[str]:
    """Hard-rule violations of the plan `at` (a `state`), against the families' requests of that moment."""
    instance, solution = at
    numbers = dict(db.session.execute(select(Pupil.id, Pupil.number).where(Pupil.school_id == term.school_id)).all())
    codes = {s.id: s.code for s in db.session.scalars(select(Session).where(Session.term_id == term.id))}
    by_code = {s.id: (s.day, s.period) for s in instance.sessions}
    wanted = {r.pupil: r for r in instance.requests}
    fixed = []
    for pupil_id, session_id in db.session.execute(select(Pin.pupil_id, Pin.session_id).where(Pin.term_id == term.id)):
        code = codes.get(session_id)
        if (pupil_id, session_id) not in before or code not in by_code:
            continue
        day, period = by_code[code]
        request = wanted.get(numbers.get(pupil_id, ""))
        if request is not None and day in request.days and period in request.periods:
            fixed.append(domain.Assignment(numbers[pupil_id], code))
    instance = dataclasses.replace(instance, fixed=tuple(fixed))
    known = {p.id for p in instance.pupils}
    solution = dataclasses.replace(solution, unserved=tuple(u for u in solution.unserved if u.pupil in known))
    report = validate(instance, solution)  # a withdrawn family's uncovered days stay on record, outside the check
    return sorted(v.message if v.message.startswith("rule ") else f"rule {v.rule}: {v.message}"
                  for v in report.violations)


def drop_idle_staff(run_id: int) -> None:
    """A session nobody sits in has no teachers (hard rule 5): drop the staffing of emptied sessions."""
    db.session.flush()
    seated = select(RunAssignment.session_id).where(RunAssignment.run_id == run_id)
    db.session.execute(delete(RunStaffing).where(RunStaffing.run_id == run_id,
                                                 RunStaffing.session_id.not_in(seated)))


def refresh_reasons(term: Term, run: AllocationRun) -> None:
    """Recompute every uncovered pupil-day's reason, the run's coverage and metrics, and the waitlist numbers.

    A pupil-day now covered loses its row; one no longer requested keeps it (it is part of what was
    published) but holds no waitlist place.
    """
    db.session.flush()
    instance = term_to_instance(term)
    solution = run_to_solution(run)
    fresh = {(u.pupil, u.day): u for u in explain_unserved(instance, solution.assignments, solution.staffing)}
    ids = dict(db.session.execute(select(Pupil.number, Pupil.id).where(Pupil.school_id == term.school_id)).all())
    requested = {(r.pupil, d) for r in instance.requests for d in r.days}
    seen = set()
    updates, gone = [], []
    rows = db.session.execute(select(RunUnserved.id, Pupil.number, RunUnserved.day, RunUnserved.code,
                                     RunUnserved.reason, RunUnserved.params)
                              .join(Pupil, Pupil.id == RunUnserved.pupil_id).where(RunUnserved.run_id == run.id))
    for row_id, number, day, code, text, params in rows:  # columns, not objects: a school has thousands
        key = (number, day)
        seen.add(key)
        item = fresh.get(key)
        if item is not None:
            now = {"code": item.code, "reason": item.reason, "params": dict(item.params) or None}
            if (code, text, params) != (now["code"], now["reason"], now["params"]):
                updates.append({"id": row_id, **now})
        elif key in requested:
            gone.append(row_id)
    added = [{"run_id": run.id, "pupil_id": ids[item.pupil], "day": item.day, "code": item.code,
              "reason": item.reason, "params": dict(item.params) or None}
             for key, item in fresh.items() if key not in seen and item.pupil in ids]
    if updates:
        db.session.execute(update(RunUnserved), updates)
    for start in range(0, len(gone), 500):
        db.session.execute(delete(RunUnserved).where(RunUnserved.id.in_(gone[start:start + 500])),
                           execution_options={"synchronize_session": False})
    if added:
        db.session.execute(insert(RunUnserved), added)
    if updates or gone or added:  # rows loaded before this point are stale now
        for held in [o for o in db.session.identity_map.values() if isinstance(o, RunUnserved)]:
            if held.id in gone:
                db.session.expunge(held)
            else:
                db.session.expire(held)
        db.session.expire(run, ["unserved"])
    db.session.flush()
    recomputed = recompute_objective(instance, run_to_solution(run))
    objective = dict(run.objective or {})
    # The solver's bound held for the term it solved; seats added since (more capacity, an accepted offer) can
    # cover more than that, and a bound is never below what the plan achieves.
    bound = max(int(objective.get("coverage_bound", run.coverage_bound or 0)), recomputed.coverage)
    objective.update(coverage=recomputed.coverage, coverage_bound=bound, preference=recomputed.preference,
                     max_teacher_load=recomputed.max_teacher_load)
    run.objective = objective
    run.coverage_bound = bound
    # The run's record of priority groups is kept: tags changed since the run do not move its figures.
    metrics = compute_metrics(instance, run_to_solution(run), (run.metrics or {}).get("priority_groups"))
    run.metrics = metrics
    run.coverage = metrics["coverage"]
    run_summary.mark_changed(db.session, run.id)
    positions(term)


def amend(term: Term, run: AllocationRun, *, kind: AmendmentKind, actor_id: int | None, reason: str,
          before: Seats, before_state: tuple[domain.Instance, domain.Solution] | None = None,
          data_changed: bool = True, left: frozenset[int] = frozenset()) -> PlanAmendment | None:
    """Record the new version of `term`'s plan (`run`) if its seats differ from `before`; the caller commits.

    Publishing (`PUBLISH`/`REPUBLISH`) always makes a version. Raises `RuleBroken` when the new version breaks
    a hard rule that the plan before the change (`before_state`) kept. `data_changed` False says only seats
    may have changed (placements from the waitlist): with no seat changed either, there is nothing to do.
    `left` are pupils who left the school in this change: like a family's own change, their going may leave a
    session below its minimum (kept as `violations`), and their families were told by their own message
    (`PUPIL_LEFT`), not as a timetable change.
    """
    drop_idle_staff(run.id)
    after = snapshot(run.id)
    publishing = kind in (AmendmentKind.PUBLISH, AmendmentKind.REPUBLISH)
    if after == before and not publishing and not data_changed:
        return None
    found = problems(term, state(term, run), before)
    earlier = set(problems(term, before_state, before)) if found and before_state is not None else set()
    new = [p for p in found if p not in earlier]
    if after == before and not publishing:
        if new:
            raise RuleBroken(new)
        refresh_reasons(term, run)
        return None
    tolerated = (kind in FAMILY_KINDS or bool(left)) and all(p.startswith("rule 5:") for p in new)
    if new and not tolerated:
        raise RuleBroken(new)

    term.plan_version = int(db.session.scalar(
        select(func.max(PlanAmendment.version)).where(PlanAmendment.term_id == term.id)) or 0) + 1
    amendment = PlanAmendment(term_id=term.id, run_id=run.id, version=term.plan_version, at=utcnow(),
                              actor_id=actor_id, kind=kind.value, reason=reason, violations=new or None)
    db.session.add(amendment)
    days = dict(db.session.execute(select(Session.id, Session.day).where(Session.term_id == term.id)).all())
    touched: dict[int, dict[str, set[int]]] = defaultdict(lambda: {"gained": set(), "lost": set()})
    db.session.flush()  # the amendment's id, for its changes, written in one statement
    changes = []
    for gained, pairs in ((True, after - before), (False, before - after)):
        for pupil_id, session_id in sorted(pairs):
            day = days.get(session_id, 0)
            changes.append({"amendment_id": amendment.id, "pupil_id": pupil_id, "session_id": session_id,
                            "day": day, "gained": gained})
            touched[pupil_id]["gained" if gained else "lost"].add(day)
    if changes:
        db.session.execute(insert(PlanChange), changes)
    db.session.expire(amendment, ["changes"])
    refresh_reasons(term, run)

    if kind == AmendmentKind.PUBLISH:
        told = set(db.session.scalars(select(CareRequest.pupil_id).where(
            CareRequest.term_id == term.id, CareRequest.status == "active")))
        for pupil_id in sorted(told | set(touched)):
            notify(NotificationEvent.RESULTS_PUBLISHED, pupil_id=pupil_id, term_id=term.id,
                   params={"version": term.plan_version})
    else:
        for pupil_id, change in sorted(touched.items()):
            if pupil_id in left:
                continue
            notify(NotificationEvent.PLAN_AMENDED, pupil_id=pupil_id, term_id=term.id,
                   params={"version": term.plan_version, "kind": kind.value,
                           "days_gained": sorted(change["gained"] - change["lost"]),
                           "days_lost": sorted(change["lost"] - change["gained"])})
    audit.record("plan.amend", f"term:{term.id}",
                 {"version": term.plan_version, "kind": kind.value, "run": run.id, "reason": reason,
                  "gained": len(after - before), "lost": len(before - after), "families": len(touched)},
                 user_id=actor_id, school_id=term.school_id)
    return amendment


def seats_diff(before: Seats, after: Seats) -> dict[int, dict[str, list[int]]]:
    """Per pupil, the session ids gained and lost between two seat sets (for confirmation pages)."""
    diff: dict[int, dict[str, list[int]]] = defaultdict(lambda: {"gained": [], "lost": []})
    for pupil_id, session_id in sorted(after - before):
        diff[pupil_id]["gained"].append(session_id)
    for pupil_id, session_id in sorted(before - after):
        diff[pupil_id]["lost"].append(session_id)
    return dict(diff)
