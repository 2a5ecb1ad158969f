"""ORM rows <-> scheduler domain: the only module that knows both.

`term_to_instance` builds the solver's input from a term; `store_solution` writes a solver answer into a run;
`instance_to_term` creates or replaces a term from an instance file (seed-demo, import). Codes are the shared
ids: school code, period/activity/session codes, teacher staff numbers and pupil numbers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from sqlalchemy import delete, func, insert, select

from scheduler import domain
from webapp import run_summary
from webapp.extensions import db
from webapp.labels import local_date
from webapp.models import (
    Activity,
    AllocationRun,
    CareRequest,
    District,
    Period,
    Pin,
    PriorityGroup,
    PriorityTag,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunState,
    RunUnserved,
    School,
    Session,
    Teacher,
    TeacherAvailability,
    Term,
    clock,
    utcnow,
)


def periods_for_pickup(periods: Sequence[Period], pickup: str) -> list[str]:
    """The periods a child needs when collected at `pickup` ("HH:MM"): every period that starts before it."""
    return [p.code for p in sorted(periods, key=lambda p: p.position) if p.start < pickup]


def pickup_for_periods(periods: Sequence[Period], codes: Iterable[str]) -> str:
    """The pickup time implied by a list of requested periods: the end of the latest one."""
    wanted = set(codes)
    ends = [p.end for p in periods if p.code in wanted]
    return max(ends) if ends else ""


# ------------------------------------------------------------------------------------------ priority weights


def school_today() -> date:
    """The school's date now (the app's `TIMEZONE`), from the app clock (`NOW` in tests)."""
    return local_date(clock())


def default_weight(term: Term, pupil: Pupil) -> int:
    """The weight of the pupil's own `priority` level in the term (1 when the term does not list it)."""
    return int((term.priority_weights or {}).get(str(pupil.priority), 1))


@dataclass(frozen=True)
class PupilGroup:
    """One of a pupil's priority tags, with its (active) group: `counts` is False once the tag has expired."""

    group: PriorityGroup
    expires_on: date
    counts: bool


def pupil_groups(pupil_ids: Iterable[int], today: date | None = None) -> dict[int, list[PupilGroup]]:
    """Each pupil's tags in active groups, heaviest group first, in one query; a tag counts until its
    `expires_on` (inclusive, on the school's `today`). Pupils without such a tag are absent."""
    ids = sorted(set(pupil_ids))
    if not ids:
        return {}
    on = today if today is not None else school_today()
    groups: dict[int, list[PupilGroup]] = {}
    for pupil_id, expires_on, group in db.session.execute(
        select(PriorityTag.pupil_id, PriorityTag.expires_on, PriorityGroup)
        .join(PriorityGroup, PriorityGroup.id == PriorityTag.group_id)
        .where(PriorityTag.pupil_id.in_(ids), PriorityGroup.active)
        .order_by(PriorityTag.pupil_id, PriorityGroup.weight.desc(), PriorityGroup.id)
    ):
        groups.setdefault(pupil_id, []).append(PupilGroup(group, expires_on, expires_on >= on))
    return groups


def counting_groups(pupil_ids: Iterable[int], today: date | None = None) -> dict[int, PriorityGroup]:
    """The group each pupil counts under on `today`: the heaviest group among their tags that still count
    (`pupil_groups` lists them heaviest first). Pupils whose weight comes from their level are absent."""
    counting = {}
    for pupil_id, tags in pupil_groups(pupil_ids, today).items():
        group = next((tag.group for tag in tags if tag.counts), None)
        if group is not None:
            counting[pupil_id] = group
    return counting


def effective_weights(term: Term, pupils: Iterable[Pupil], today: date | None = None) -> dict[int, int]:
    """Each pupil's coverage weight, by pupil id: the weight of the group they count under on `today`
    (`counting_groups`: the heaviest tag not expired, in an active group), or their level's `default_weight`
    when no tag counts.

    The one place this rule lives: the solver instance, the waitlist order and the repair queue all call it.
    """
    pupils = list(pupils)
    return _weights(term, pupils, counting_groups((p.id for p in pupils), today))


def _weights(term: Term, pupils: Iterable[Pupil], groups: dict[int, PriorityGroup]) -> dict[int, int]:
    """The rule of `effective_weights`, given each pupil's counting group."""
    return {pupil.id: groups[pupil.id].weight if pupil.id in groups else default_weight(term, pupil)
            for pupil in pupils}


def _instance_levels(term: Term, pupils: Sequence[Pupil], weights: dict[int, int]) -> tuple[dict[int, int],
                                                                                           dict[int, int]]:
    """The instance's `priority_weights` and each pupil's level in it, so that each pupil's level weighs
    exactly `weights[pupil.id]`: the term's own levels are kept, and a weight that no level carries gets a new
    level above them (the solver's contract takes levels and weights, never groups)."""
    levels = {int(level): int(weight) for level, weight in (term.priority_weights or {"0": 1}).items()}
    level_of = {}
    for pupil in pupils:
        weight = weights[pupil.id]
        if levels.get(pupil.priority) == weight:
            level_of[pupil.id] = pupil.priority
            continue
        same = sorted(level for level, w in levels.items() if w == weight)
        if not same:
            same = [max(levels, default=-1) + 1]
            levels[same[0]] = weight
        level_of[pupil.id] = same[0]
    return levels, level_of


# ------------------------------------------------------------------------------------------ term -> instance


@dataclass(frozen=True)
class RunInput:
    """What a run starts from: the solver's instance of a term, and the priority group each pupil's weight came
    from (pupil number -> group id, by `counting_groups` on `on`, the school's date then; a pupil weighed by
    their level is absent). The groups stay outside the instance: the solver's contract knows levels only."""

    instance: domain.Instance
    groups: dict[str, int]
    on: date

    def group_record(self) -> dict[str, Any]:
        """The groups as a run keeps them with its metrics (`webapp.run_metrics`, key `priority_groups`)."""
        return {"on": self.on.isoformat(), "pupils": dict(sorted(self.groups.items()))}


def term_to_instance(term: Term) -> domain.Instance:
    """The solver's view of `term`: active requests, the pupils who made them, pins and the published run.

    Only pupils on the roll (`Pupil.active`) with an active request (or a pin) are included, and only active
    teachers with availability in this term: the solver needs nothing else and an exported file should carry
    no more personal data. A pupil recorded as having left the school is left out, pins included.
    """
    return term_to_run_input(term).instance


def term_to_run_input(term: Term) -> RunInput:
    """`term_to_instance`, with the group each pupil counted under (a run records them with its metrics)."""
    school = term.school
    periods = sorted(term.periods, key=lambda p: p.position)
    period_code = {p.id: p.code for p in periods}
    activities = sorted(term.activities, key=lambda a: a.id)
    activity_code = {a.id: a.code for a in activities}
    sessions = db.session.scalars(select(Session).where(Session.term_id == term.id).order_by(Session.id)).all()
    session_code = {s.id: s.code for s in sessions}

    available: dict[int, set[domain.Slot]] = {}
    for row in db.session.execute(
        select(TeacherAvailability.teacher_id, TeacherAvailability.day, TeacherAvailability.period_id)
        .where(TeacherAvailability.term_id == term.id)
    ):
        available.setdefault(row.teacher_id, set()).add((row.day, period_code[row.period_id]))
    teachers = db.session.scalars(
        select(Teacher).where(Teacher.school_id == school.id, Teacher.active, Teacher.id.in_(available))
        .order_by(Teacher.id)
    ).all()

    # Plain rows, not entities: a big school has thousands of requests, and the instance needs only these.
    requests = db.session.execute(
        select(CareRequest.pupil_id, CareRequest.days, CareRequest.periods, CareRequest.preferences).join(Pupil)
        .where(CareRequest.term_id == term.id, CareRequest.status == "active", Pupil.active)
        .order_by(CareRequest.pupil_id)
    ).all()
    pins = db.session.scalars(select(Pin).join(Pupil, Pupil.id == Pin.pupil_id)
                              .where(Pin.term_id == term.id, Pupil.active).order_by(Pin.id)).all()
    pupil_ids = {r.pupil_id for r in requests} | {p.pupil_id for p in pins}
    pupils = db.session.scalars(select(Pupil).where(Pupil.id.in_(pupil_ids)).order_by(Pupil.id)).all()
    pupil_number = {p.id: p.number for p in pupils}
    today = school_today()
    groups = counting_groups((p.id for p in pupils), today)
    levels, level_of = _instance_levels(term, pupils, _weights(term, pupils, groups))

    previous: list[domain.Assignment] = []
    if term.published_run_id is not None:
        for pupil, session_id in db.session.execute(
            select(Pupil.number, RunAssignment.session_id).join(Pupil, Pupil.id == RunAssignment.pupil_id)
            .where(RunAssignment.run_id == term.published_run_id).order_by(Pupil.id, RunAssignment.session_id)
        ):
            if session_id in session_code:
                previous.append(domain.Assignment(pupil, session_code[session_id]))

    instance = domain.Instance(
        school=domain.School(school.code, school.name, school.district.name if school.district else ""),
        term=term.name,
        weekdays=tuple(term.weekdays),
        periods=tuple(domain.Period(p.code, p.start, p.end) for p in periods),
        priority_weights=levels,
        activities=tuple(domain.Activity(a.code, a.name, a.category, a.qualification) for a in activities),
        sessions=tuple(
            domain.Session(s.code, activity_code[s.activity_id], s.day, period_code[s.period_id], s.room,
                           s.capacity, (s.grade_lo, s.grade_hi), s.pupils_per_teacher, s.min_pupils)
            for s in sessions
        ),
        teachers=tuple(
            domain.Teacher(t.code, t.name, frozenset(t.qualifications), frozenset(available[t.id]), t.max_sessions)
            for t in teachers
        ),
        pupils=tuple(domain.Pupil(p.number, p.name, p.grade, p.class_name, p.family_code, level_of[p.id])
                     for p in pupils),
        requests=tuple(
            domain.Request(pupil_number[r.pupil_id], tuple(r.days), tuple(r.periods), tuple(r.preferences))
            for r in requests
        ),
        fixed=tuple(domain.Assignment(pupil_number[p.pupil_id], session_code[p.session_id]) for p in pins),
        previous=tuple(previous),
        lottery_seed=term.lottery_seed or None,  # 0: not drawn yet
        seat_policy=term.seat_policy or domain.DEFAULT_SEAT_POLICY,
    )
    return RunInput(instance, {pupil_number[pupil_id]: group.id for pupil_id, group in groups.items()}, today)


# ------------------------------------------------------------------------------------------ instance -> term


def school_from_instance(instance: domain.Instance, city: str = "") -> School:
    """The school named by the instance, created (with its district) when new. The caller commits."""
    school = db.session.scalar(select(School).where(School.code == instance.school.id))
    if school is None:
        school = School(code=instance.school.id, name=instance.school.name)
        db.session.add(school)
    if instance.school.district and school.district is None:
        district = db.session.scalar(select(District).where(District.name == instance.school.district))
        if district is None:
            district = District(name=instance.school.district, city=city)
            db.session.add(district)
        school.district = district
    return school


def instance_to_term(instance: domain.Instance, school: School, *, created_by: int | None = None) -> Term:
    """Create or replace the term `instance.term` of `school` from an instance, in one transaction.

    The term's periods, activities, sessions, teacher availability, pins and requests become exactly the
    instance's (requests missing from it are withdrawn, not deleted). Teachers and pupils are school-wide:
    those in the instance are created or updated, others are left alone. A non-empty `previous` becomes a
    published run, so a re-run keeps stability against it.
    """
    term = db.session.scalar(select(Term).where(Term.school_id == school.id, Term.name == instance.term))
    if term is None:
        term = Term(school=school, name=instance.term)
        db.session.add(term)
    term.weekdays = list(instance.weekdays)
    term.priority_weights = {str(level): weight for level, weight in sorted(instance.priority_weights.items())}
    term.seat_policy = instance.seat_policy
    db.session.flush()

    periods = _replace_by_code(term.periods, Period, term, [
        {"code": p.id, "start": p.start, "end": p.end, "position": i} for i, p in enumerate(instance.periods)
    ])
    activities = _replace_by_code(term.activities, Activity, term, [
        {"code": a.id, "name": a.name, "category": a.category, "qualification": a.qualification}
        for a in instance.activities
    ])
    sessions = _replace_by_code(term.sessions, Session, term, [
        {"code": s.id, "activity": activities[s.activity], "day": s.day, "period": periods[s.period],
         "room": s.room, "capacity": s.capacity, "grade_lo": s.grades[0], "grade_hi": s.grades[1],
         "pupils_per_teacher": s.pupils_per_teacher, "min_pupils": s.min_pupils}
        for s in instance.sessions
    ])

    teachers = _upsert_school_rows(Teacher, school, [
        {"code": t.id, "name": t.name, "qualifications": sorted(t.qualifications),
         "max_sessions": t.max_sessions, "active": True} for t in instance.teachers
    ])
    pupils = _upsert_school_rows(Pupil, school, [
        {"code": p.id, "name": p.name, "grade": p.grade, "class_name": p.class_name, "family_code": p.family,
         "priority": p.priority, "active": True} for p in instance.pupils
    ], code_field="number")
    db.session.flush()

    db.session.execute(delete(TeacherAvailability).where(TeacherAvailability.term_id == term.id))
    availability = [
        {"teacher_id": teachers[t.id].id, "term_id": term.id, "day": day, "period_id": periods[period].id}
        for t in instance.teachers for day, period in sorted(t.available)
    ]
    if availability:
        db.session.execute(insert(TeacherAvailability), availability)

    existing = {r.pupil_id: r for r in db.session.scalars(select(CareRequest).where(CareRequest.term_id == term.id))}
    requested: set[int] = set()
    for request in instance.requests:
        pupil_id = pupils[request.pupil].id
        requested.add(pupil_id)
        row = existing.get(pupil_id) or CareRequest(term=term, pupil_id=pupil_id)
        row.days = list(request.days)
        row.periods = list(request.periods)
        row.preferences = list(request.preferences)
        row.pickup_time = pickup_for_periods(list(periods.values()), request.periods)
        row.status = "active"
        db.session.add(row)
    for pupil_id, row in existing.items():
        if pupil_id not in requested:
            row.status = "withdrawn"

    db.session.execute(delete(Pin).where(Pin.term_id == term.id))
    for pair in instance.fixed:
        db.session.add(Pin(term=term, pupil_id=pupils[pair.pupil].id, session=sessions[pair.session],
                           created_by=created_by))

    if instance.previous:
        db.session.flush()
        run = AllocationRun(term=term, created_by=created_by, state=RunState.DONE, stage="imported", progress=1.0,
                            status=domain.Status.IMPORTED, is_published=True, published_at=utcnow(),
                            version=_next_version(term), stats={"source": "instance previous"})
        db.session.add(run)
        db.session.flush()
        db.session.execute(insert(RunAssignment), [
            {"run_id": run.id, "pupil_id": pupils[a.pupil].id, "session_id": sessions[a.session].id,
             "pinned": False} for a in instance.previous
        ])
        run_summary.mark_changed(db.session, run.id)
        term.published_run_id = run.id
    db.session.commit()
    return term


def _replace_by_code(current: list[Any], model: Any, term: Term, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Make the term's rows of `model` exactly `rows` (matched by code); return them by code."""
    by_code = {row.code: row for row in current}
    wanted = {row["code"] for row in rows}
    for code, row in by_code.items():
        if code not in wanted:
            db.session.delete(row)
    result: dict[str, Any] = {}
    for values in rows:
        row = by_code.get(values["code"])
        if row is None:
            row = model(term=term)
            db.session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        result[values["code"]] = row
    return result


def _upsert_school_rows(model: Any, school: School, rows: list[dict[str, Any]],
                        code_field: str = "code") -> dict[str, Any]:
    column = getattr(model, code_field)
    codes = [row["code"] for row in rows]
    found = {getattr(row, code_field): row for row in db.session.scalars(
        select(model).where(model.school_id == school.id, column.in_(codes)))}
    result: dict[str, Any] = {}
    for values in rows:
        code = values.pop("code")
        row = found.get(code)
        if row is None:
            row = model(school=school, **{code_field: code})
            db.session.add(row)
        for key, value in values.items():
            setattr(row, key, value)
        result[code] = row
    return result


def _next_version(term: Term) -> int:
    latest = db.session.scalar(select(func.max(AllocationRun.version)).where(AllocationRun.term_id == term.id))
    return (latest or 0) + 1


# ------------------------------------------------------------------------------------------ solution <-> run


def _code_map(query: Any) -> dict[str, int]:
    return {code: row_id for code, row_id in db.session.execute(query)}


def store_solution(term: Term, solution: domain.Solution, run: AllocationRun, *,
                   instance: domain.Instance | None = None) -> None:
    """Write the solver's answer into `run` (replacing earlier rows) and mark it done, in one transaction.

    Raises `ValueError` naming the first id the term does not know, and writes nothing then.
    """
    pupil_id = _code_map(select(Pupil.number, Pupil.id).where(Pupil.school_id == term.school_id))
    session_id = _code_map(select(Session.code, Session.id).where(Session.term_id == term.id))
    teacher_id = _code_map(select(Teacher.code, Teacher.id).where(Teacher.school_id == term.school_id))

    def lookup(table: dict[str, int], code: str, kind: str) -> int:
        try:
            return table[code]
        except KeyError:
            raise ValueError(f"solution refers to unknown {kind} {code!r} (term {term.name})") from None

    pinned = set(db.session.execute(select(Pin.pupil_id, Pin.session_id).where(Pin.term_id == term.id)).all())
    assignments = []
    for a in solution.assignments:
        pair = (lookup(pupil_id, a.pupil, "pupil"), lookup(session_id, a.session, "session"))
        assignments.append({"run_id": run.id, "pupil_id": pair[0], "session_id": pair[1],
                            "pinned": pair in pinned})
    staffing = [{"run_id": run.id, "teacher_id": lookup(teacher_id, s.teacher, "teacher"),
                 "session_id": lookup(session_id, s.session, "session")} for s in solution.staffing]
    unserved = [{"run_id": run.id, "pupil_id": lookup(pupil_id, u.pupil, "pupil"), "day": u.day,
                 "code": u.code, "reason": u.reason, "params": dict(u.params) or None, "waitlist_position": None}
                for u in solution.unserved]

    try:
        run_summary.mark_changed(db.session, run.id)
        for model in (RunAssignment, RunStaffing, RunUnserved):
            db.session.execute(delete(model).where(model.run_id == run.id))
        for model, rows in ((RunAssignment, assignments), (RunStaffing, staffing), (RunUnserved, unserved)):
            if rows:  # the table's own insert: the ORM's bulk path costs more than the rows' executemany
                db.session.execute(insert(model.__table__), rows)
        objective = solution.objective
        run.status = solution.status
        run.coverage = objective.coverage
        run.coverage_bound = objective.coverage_bound
        run.best_coverage = objective.coverage
        run.objective = asdict(objective)
        run.stats = dict(solution.stats)
        if instance is not None:
            run.demand = instance.demand()
        run.state = RunState.DONE
        run.stage = RunState.DONE
        run.progress = 1.0
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


def run_to_solution(run: AllocationRun) -> domain.Solution:
    """The stored run as a scheduler `Solution` (for export, validation and comparison)."""
    term = run.term
    assignments = db.session.execute(
        select(Pupil.number, Session.code).select_from(RunAssignment)
        .join(Pupil, Pupil.id == RunAssignment.pupil_id).join(Session, Session.id == RunAssignment.session_id)
        .where(RunAssignment.run_id == run.id).order_by(Pupil.number, Session.code)
    ).all()
    staffing = db.session.execute(
        select(Teacher.code, Session.code).select_from(RunStaffing)
        .join(Teacher, Teacher.id == RunStaffing.teacher_id).join(Session, Session.id == RunStaffing.session_id)
        .where(RunStaffing.run_id == run.id).order_by(Teacher.code, Session.code)
    ).all()
    unserved = db.session.execute(
        select(Pupil.number, RunUnserved.day, RunUnserved.reason, RunUnserved.code, RunUnserved.params)
        .select_from(RunUnserved)
        .join(Pupil, Pupil.id == RunUnserved.pupil_id)
        .where(RunUnserved.run_id == run.id).order_by(Pupil.number, RunUnserved.day)
    ).all()
    values = run.objective or {}
    objective = domain.Objective(
        coverage=int(values.get("coverage", run.coverage or 0)),
        coverage_bound=int(values.get("coverage_bound", run.coverage_bound or 0)),
        stability=int(values.get("stability", 0)),
        preference=int(values.get("preference", 0)),
        max_teacher_load=int(values.get("max_teacher_load", 0)),
    )
    return domain.Solution(
        school=term.school.code,
        status=run.status or domain.Status.UNKNOWN,
        assignments=tuple(domain.Assignment(p, s) for p, s in assignments),
        staffing=tuple(domain.Staffing(t, s) for t, s in staffing),
        objective=objective,
        unserved=tuple(domain.Unserved(p, d, reason, code, params or {}) for p, d, reason, code, params in unserved),
        stats=dict(run.stats or {}),
    )
