"""Each finished run's coverage figures, stored with the run so the bureau's dashboard reads one row per school.

A city holds millions of assignment rows; counting them on every dashboard view costs most of a second. So the
figures are counted once per run, when its rows change, and kept in `AllocationRun.summary` (plain JSON):

    {"v": 1, "requesting": 412, "requested_days": 1530, "served": 398, "covered_days": 1489,
     "teachers": 31, "teacher_sessions": 96, "max_load": 5,
     "slots": [[day, period, pupils asking, pupils seated], ...]}

Request-side figures (pupils requesting, requested days, asked per slot) are those of the run's term at the
moment the summary is counted, so they always match the seats beside them.

Any transaction that adds or deletes a run's assignment, staffing or unserved rows through the ORM marks the run
by itself (a `before_flush` hook); code that writes those rows with bulk statements calls `mark_changed`. The run's
summary is recounted just before that transaction commits, in it, so a summary is never older than its rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, and_, cast, event, func, select, update
from sqlalchemy.orm import Session as OrmSession

from webapp.extensions import db
from webapp.models import AllocationRun, CareRequest, Period, Pupil, RunAssignment, RunStaffing, RunUnserved, Session

VERSION = 1
_CHANGED = "run_summary_changed"
_ROW_MODELS = (RunAssignment, RunStaffing, RunUnserved)


def empty() -> dict[str, Any]:
    return {"v": VERSION, "requesting": 0, "requested_days": 0, "served": 0, "covered_days": 0, "teachers": 0,
            "teacher_sessions": 0, "max_load": 0, "slots": []}


def is_current(summary: Any) -> bool:
    """Whether a stored summary has this module's format (older or missing ones are counted again)."""
    return isinstance(summary, dict) and summary.get("v") == VERSION


def _json_list(text: str | None, cache: dict[str | None, list[Any]]) -> list[Any]:
    if text not in cache:
        try:
            value = json.loads(text) if text else []
        except ValueError:
            value = []
        cache[text] = value if isinstance(value, list) else []
    return cache[text]


def request_figures(term_ids: Iterable[int], session: Any = None) -> dict[int, dict[str, Any]]:
    """Per term: pupils requesting, requested pupil-days and pupils asking per (day, period), from live requests.

    Active requests of active pupils with at least one day and one period count. Requests share few distinct
    (days, periods) combinations, so the query groups by their JSON text and Python expands the groups.
    """
    ids = sorted(set(term_ids))
    result: dict[int, dict[str, Any]] = {t: {"requesting": 0, "requested_days": 0, "asked": {}} for t in ids}
    if not ids:
        return result
    days_text, periods_text = cast(CareRequest.days, String), cast(CareRequest.periods, String)
    cache: dict[str | None, list[Any]] = {}
    for term_id, days_json, periods_json, n in (session or db.session).execute(
        select(CareRequest.term_id, days_text, periods_text, func.count())
        .join(Pupil, Pupil.id == CareRequest.pupil_id)
        .where(CareRequest.term_id.in_(ids), CareRequest.status == "active", Pupil.active)
        .group_by(CareRequest.term_id, days_text, periods_text)
    ):
        days, periods = _json_list(days_json, cache), _json_list(periods_json, cache)
        if not days or not periods:
            continue
        figures = result[term_id]
        figures["requesting"] += n
        figures["requested_days"] += n * len(days)
        asked = figures["asked"]
        for day in days:
            for period in periods:
                key = (int(day), str(period))
                asked[key] = asked.get(key, 0) + n
    return result


def count(run_ids: Iterable[int], session: Any = None) -> dict[int, dict[str, Any]]:
    """Count the summaries of the given runs from their rows (a handful of grouped queries for any number)."""
    ids = sorted(set(run_ids))
    if not ids:
        return {}
    session = session or db.session
    run_term = dict(session.execute(select(AllocationRun.id, AllocationRun.term_id)
                                       .where(AllocationRun.id.in_(ids))).all())
    requests = request_figures(run_term.values(), session)
    summaries: dict[int, dict[str, Any]] = {}
    slots: dict[int, dict[tuple[int, str], list[int]]] = {}
    for run_id, term_id in run_term.items():
        figures = requests[term_id]
        summary = summaries[run_id] = empty()
        summary["requesting"] = summary["served"] = figures["requesting"]
        summary["requested_days"] = summary["covered_days"] = figures["requested_days"]
        slots[run_id] = {slot: [asked, 0] for slot, asked in figures["asked"].items()}

    per_session = (
        select(RunAssignment.run_id, RunAssignment.session_id, func.count().label("n"))
        .where(RunAssignment.run_id.in_(ids))
        .group_by(RunAssignment.run_id, RunAssignment.session_id)
        .subquery()
    )
    for run_id, day, period, seated in session.execute(
        select(per_session.c.run_id, Session.day, Period.code, func.sum(per_session.c.n))
        .join(Session, Session.id == per_session.c.session_id)
        .join(Period, Period.id == Session.period_id)
        .group_by(per_session.c.run_id, Session.day, Period.code)
    ):
        slots[run_id].setdefault((int(day), str(period)), [0, 0])[1] += int(seated)

    for run_id, unserved in session.execute(
        select(RunUnserved.run_id, func.count()).where(RunUnserved.run_id.in_(ids)).group_by(RunUnserved.run_id)
    ):
        summary = summaries[run_id]
        summary["covered_days"] = max(0, summary["requested_days"] - int(unserved))

    per_pupil = (
        select(RunUnserved.run_id, RunUnserved.pupil_id, func.count().label("n"))
        .where(RunUnserved.run_id.in_(ids))
        .group_by(RunUnserved.run_id, RunUnserved.pupil_id)
        .subquery()
    )
    for run_id, never_served in session.execute(  # pupils unserved on every day they asked for
        select(per_pupil.c.run_id, func.count())
        .join(AllocationRun, AllocationRun.id == per_pupil.c.run_id)
        .join(CareRequest, and_(CareRequest.term_id == AllocationRun.term_id,
                                CareRequest.pupil_id == per_pupil.c.pupil_id))
        .join(Pupil, Pupil.id == CareRequest.pupil_id)
        .where(CareRequest.status == "active", Pupil.active,
               per_pupil.c.n >= func.json_array_length(CareRequest.days))
        .group_by(per_pupil.c.run_id)
    ):
        summary = summaries[run_id]
        summary["served"] = max(0, summary["requesting"] - int(never_served))

    loads = (
        select(RunStaffing.run_id, RunStaffing.teacher_id, func.count().label("n"))
        .where(RunStaffing.run_id.in_(ids))
        .group_by(RunStaffing.run_id, RunStaffing.teacher_id)
        .subquery()
    )
    for run_id, teachers, sessions_total, largest in session.execute(
        select(loads.c.run_id, func.count(), func.sum(loads.c.n), func.max(loads.c.n)).group_by(loads.c.run_id)
    ):
        summary = summaries[run_id]
        summary["teachers"], summary["teacher_sessions"] = int(teachers), int(sessions_total)
        summary["max_load"] = int(largest)

    for run_id, by_slot in slots.items():
        summaries[run_id]["slots"] = [[day, period, asked, seated]
                                      for (day, period), (asked, seated) in sorted(by_slot.items())]
    return summaries


def store(run_ids: Iterable[int]) -> None:
    """Recount and save the summaries of the given runs in the current transaction (the caller commits)."""
    _save(db.session, count(run_ids))


def _save(session: Any, summaries: dict[int, dict[str, Any]]) -> None:
    for run_id, summary in summaries.items():
        session.execute(update(AllocationRun).where(AllocationRun.id == run_id).values(summary=summary)
                        .execution_options(synchronize_session=False))


def mark_changed(session: OrmSession | Any, run_id: int | None) -> None:
    """Recount this run's summary before the session's transaction commits (for bulk writes of its rows)."""
    if run_id is not None:
        session.info.setdefault(_CHANGED, set()).add(int(run_id))


@event.listens_for(OrmSession, "before_flush")
def _mark_orm_changes(session: OrmSession, _context: Any, _instances: Any) -> None:
    for obj in (*session.new, *session.deleted):
        if isinstance(obj, _ROW_MODELS):
            mark_changed(session, obj.run_id)


@event.listens_for(OrmSession, "before_commit")
def _recount_before_commit(session: OrmSession) -> None:
    if not session.info.get(_CHANGED):
        return
    session.flush()
    run_ids = session.info.pop(_CHANGED, set())
    if not run_ids:
        return
    _save(session, count(run_ids, session))


@event.listens_for(OrmSession, "after_rollback")
def _forget_on_rollback(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)
