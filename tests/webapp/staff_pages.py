"""Every staff page (school admin: admin, runs, rosters, messages; bureau) on a small city, for the page-wide
checks: the 375 px browser test (tests/e2e/test_staff_phone.py) and the language test (test_staff_language.py).

The pages come from the app's URL map, so a new GET page of these areas is checked as soon as it exists; one that
is not a page (a download, JSON) or needs an id made later is named in NOT_PAGES with the reason.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask, url_for
from sqlalchemy import select

from tests.webapp.factories import create_user, seed_city
from webapp.extensions import db
from webapp.models import (
    Activity,
    AllocationRun,
    BureauCalendar,
    CalendarDay,
    CalendarDayKind,
    District,
    Period,
    PriorityGroup,
    PriorityTag,
    Pupil,
    School,
    Session,
    Teacher,
    Term,
    User,
)

STAFF_AREAS = ("admin", "runs", "rosters", "bureau", "notifications")
NOT_PAGES = {
    # downloads and JSON, not pages
    "admin.import_template", "rosters.workbook", "rosters.instance_export", "rosters.solution_export",
    "runs.status", "bureau.batch_status", "bureau.export", "bureau.hiring_export", "bureau.calendar_template",
    # the parents' own pages in the notifications area (covered by the parent tests)
    "notifications.inbox_page", "notifications.email",
    # its id is made by starting a batch (the browser test does)
    "bureau.batch",
    # needs a published plan with a waitlisted pupil-day (tests/webapp/admin/test_pupil_page.py covers it)
    "admin.place_pupil",
}
LOGINS = {"admin": "admin-km1", "bureau": "bureau-city"}


def staff_world(app: Flask) -> dict[str, Any]:
    """The tiny city of factories.seed_city, an admin of its first school (KM-TEST-0001) and a city-wide bureau
    user; returns the ids that fill the pages' URL parameters."""
    with app.app_context():
        city = seed_city()
        school = db.session.get(School, city["schools"]["KM-TEST-0001"])
        assert school is not None
        create_user("school_admin", login=LOGINS["admin"], school=school)
        create_user("bureau", login=LOGINS["bureau"])
        term = db.session.scalar(select(Term).where(Term.school_id == school.id))
        assert term is not None
        first = {model: db.session.scalar(select(model.id).where(where).order_by(model.id))
                 for model, where in ((Session, Session.term_id == term.id), (Teacher, Teacher.school_id == school.id),
                                      (Pupil, Pupil.school_id == school.id), (Activity, Activity.term_id == term.id),
                                      (AllocationRun, AllocationRun.term_id == term.id))}
        group = PriorityGroup(name_zh="特殊教育需要", name_en="Special educational needs", weight=4)
        db.session.add(group)
        db.session.flush()
        db.session.add(PriorityTag(pupil_id=first[Pupil], group_id=group.id, note="残疾人证 5301",
                                   expires_on=date.today() + timedelta(days=20)))
        calendar = BureauCalendar(term_name=term.name, first_day=date(2026, 9, 1), last_day=date(2027, 1, 22),
                                  days=[CalendarDay(day=date(2026, 10, 1), kind=CalendarDayKind.HOLIDAY, note="国庆")])
        db.session.add(calendar)
        db.session.commit()
        return {
            "group_id": group.id, "calendar_id": calendar.id,
            "term_id": term.id, "session_id": first[Session], "teacher_id": first[Teacher],
            "pupil_id": first[Pupil], "activity_id": first[Activity], "run_id": first[AllocationRun],
            "class_name": db.session.scalar(select(Pupil.class_name).where(Pupil.school_id == school.id)),
            "kind": "pupils", "school_id": school.id, "action": "close",
            "district_id": db.session.scalar(select(District.id).where(District.name == "五华区")),
        }


def staff_urls(app: Flask, ids: dict[str, Any]) -> dict[str, list[str]]:
    """Every GET page of the staff areas, its parameters filled from `ids`, by role ("admin", "bureau")."""
    pages: dict[str, list[str]] = {"admin": [], "bureau": []}
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            area = rule.endpoint.split(".")[0]
            if area not in STAFF_AREAS or "GET" not in (rule.methods or ()) or rule.endpoint in NOT_PAGES:
                continue
            values = {name: ids[name] for name in rule.arguments}
            if rule.endpoint == "runs.compare":
                values = {"a": ids["run_id"], "b": ids["run_id"]}
            pages["bureau" if area == "bureau" else "admin"].append(url_for(rule.endpoint, **values))
    return {role: sorted(set(urls)) for role, urls in pages.items()}


def data_words(app: Flask) -> set[str]:
    """The names and codes the database holds (schools, districts, pupils, teachers, activities, rooms, classes,
    terms, qualification tags, user names): data, shown as entered in either language."""
    with app.app_context():
        columns = (School.name, School.code, District.name, District.city, Pupil.name, Pupil.number,
                   Pupil.class_name, Teacher.name, Teacher.code, Activity.name, Activity.code, Activity.category,
                   Activity.qualification, Session.code, Session.room, Term.name, Period.code, User.username,
                   PriorityGroup.name_zh, PriorityGroup.name_en, PriorityTag.note, BureauCalendar.term_name,
                   CalendarDay.note)
        words = {value for column in columns for value in db.session.scalars(select(column)) if value}
        for tags in db.session.scalars(select(Teacher.qualifications)):
            words.update(tags or ())
        for note in db.session.scalars(select(PriorityTag.note)):  # free text: each word of it is data too
            words.update((note or "").split())
    return words | {app.config["APP_NAME"]}
