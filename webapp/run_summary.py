"""Each finished run's coverage figures, stored with the run so the bureau's dashboard reads one row per school.

A city holds millions of assignment rows; counting them on every dashboard view costs most of a second. So the
figures are counted once per run, when its rows change, and kept in `AllocationRun.summary` (plain JSON):

    {"v": 1, "requesting": 412, "requested_days": 1530, "served": 398, "covered_days": 1489,
     "teachers": 31, "teacher_sessions": 96, "max_load": 5,
     "slots": [[day, period, pupils asking, pupils seated], ...],
     "fairness": {"served": {"fully": 300, "partly": 98, "not_at_all": 14},
                  "choices": {"placed": 820, "first": 0.61, "top": 0.93, "none": 0.02},
                  "justified_envy": 3, "idle_seats": 12, "split_families": 1,
                  "by_group": {"3": {"fully": 20, "partly": 4, "not_at_all": 1}, ..., "none": {...}}}}

`fairness` is the part of the run's fairness figures that sums over schools (`fairness_part`), copied from its
metrics (`webapp.run_metrics.fairness_counts`, no pupil named), or None for a run whose metrics have none; a summary
counted before fairness was stored has no such key (`summarize-runs` adds it). `by_group` splits `served` by the
city's priority group each pupil counted under when the run was made (keys: group ids, "none"); it is None for a
run whose metrics were counted before groups were recorded, and missing from a summary counted before it was
stored (`summarize-runs` adds it).

Request-side figures (pupils requesting, requested days, asked per slot) are those of the run's term at the
moment the summary is counted, so they always match the seats beside them.

Any transaction that adds or deletes a run's assignment, staffing or unserved rows through the ORM marks the run
by itself (a `before_flush` hook); code that writes those rows with bulk statements calls `mark_changed`. The run's
summary is recounted just before that transaction commits, in it, so a summary is never older than its rows.
A transaction that only replaces a run's `metrics` (a recount, a purge dropping names) refreshes just the summary's
`fairness`: the row-side figures stay as counted, which keeps those of a purged run whose rows are gone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, and_, cast, event, func, select, update
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.attributes import get_history

from webapp.extensions import db
from webapp.models import AllocationRun, CareRequest, Period, Pupil, RunAssignment, RunStaffing, RunUnserved, Session
from webapp.run_metrics import fairness_counts

VERSION = 1
_CHANGED = "run_summary_changed"
_METRICS_CHANGED = "run_summary_metrics_changed"
_ROW_MODELS = (RunAssignment, RunStaffing, RunUnserved)


def empty() -> dict[str, Any]:
    return {"v": VERSION, "requesting": 0, "requested_days": 0, "served": 0, "covered_days": 0, "teachers": 0,
            "teacher_sessions": 0, "max_load": 0, "slots": []}


def is_current(summary: Any) -> bool:
    """Whether a stored summary has this module's format (older or missing ones are counted again)."""
    return isinstance(summary, dict) and summary.get("v") == VERSION


def has_fairness(summary: dict[str, Any] | None) -> bool:
    """Whether a stored summary holds the fairness figures of today's format (None: the run has none to hold)."""
    if not summary or "fairness" not in summary:
        return False
    return summary["fairness"] is None or "by_group" in summary["fairness"]


def fairness_part(metrics: dict[str, Any] | None) -> dict[str, Any] | None:
    """The fairness figures of a run's metrics that add up over schools (None when the metrics have none).

    Served-by-priority figures are left out: a priority level is a school's own number, not a city-wide group;
    `by_group` (the city's groups, by id) takes their place.
    """
    counts = fairness_counts(metrics)
    if counts is None:
        return None
    by_group = counts.get("served_by_group")
    return {
        "served": {key: int(counts["served"][key]) for key in ("fully", "partly", "not_at_all")},
        "choices": {"placed": int(counts["choices"]["placed"]),
                    **{key: float(counts["choices"][key]) for key in ("first", "top", "none")}},
        "justified_envy": int(counts["justified_envy"]),
        "idle_seats": int(counts["idle_seats"]),
        "split_families": int(counts["split_families"]),
        "by_group": None if by_group is None else {
            str(group): {key: int(served[key]) for key in ("fully", "partly", "not_at_all")}
            for group, served in sorted(by_group.items())},
    }


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
    for run_id, metrics in session.execute(select(AllocationRun.id, AllocationRun.metrics)
                                           .where(AllocationRun.id.in_(ids))):
        summaries[run_id]["fairness"] = fairness_part(metrics)
    return summaries


def store(run_ids: Iterable[int]) -> None:
    """Recount and save the summaries of the given runs in the current transaction (the caller commits)."""
    _save(db.session, count(run_ids))


def store_fairness(run_ids: Iterable[int], session: Any = None) -> int:
    """Refresh only the `fairness` of the given runs' stored summaries from their metrics (runs without a current
    summary are left to a full count); returns how many summaries changed. The caller commits."""
    ids = sorted(set(run_ids))
    if not ids:
        return 0
    session = session or db.session
    changed = {}
    for run_id, summary, metrics in session.execute(
        select(AllocationRun.id, AllocationRun.summary, AllocationRun.metrics).where(AllocationRun.id.in_(ids))
    ):
        if is_current(summary):
            part = fairness_part(metrics)
            if "fairness" not in summary or summary["fairness"] != part:
                changed[run_id] = {**summary, "fairness": part}
    _save(session, changed)
    return len(changed)


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
    for obj in session.dirty:
        if isinstance(obj, AllocationRun) and obj.id is not None and get_history(obj, "metrics").has_changes():
            session.info.setdefault(_METRICS_CHANGED, set()).add(int(obj.id))


@event.listens_for(OrmSession, "before_commit")
def _recount_before_commit(session: OrmSession) -> None:
    # The commit flushes only after this hook, so changes to runs still pending are flushed here to mark them.
    # Nothing else is flushed early: a commit that touches no run takes its locks exactly when it did before.
    pending = any(isinstance(obj, (AllocationRun, *_ROW_MODELS))
                  for obj in (*session.new, *session.dirty, *session.deleted))
    if not pending and not session.info.get(_CHANGED) and not session.info.get(_METRICS_CHANGED):
        return
    session.flush()
    run_ids = session.info.pop(_CHANGED, set())
    metrics_only = session.info.pop(_METRICS_CHANGED, set()) - run_ids
    if run_ids:
        _save(session, count(run_ids, session))
    if metrics_only:
        store_fairness(metrics_only, session)


@event.listens_for(OrmSession, "after_rollback")
def _forget_on_rollback(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)
    session.info.pop(_METRICS_CHANGED, None)
