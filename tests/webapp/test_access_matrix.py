"""Access-control matrix: every rule in app.url_map, called by every kind of user with OTHER users' ids.

Roles: anonymous, parent A, parent B (same school X, different families), admin of school X, admin of
school Y, bureau (district of school X only). URL parameters are filled with objects that belong to
someone else: the other family's child, the other school's term/run/session/teacher/pin, a school
outside the bureau's district.

Checked for each (rule, method, role): the status fits the endpoint's policy (POLICY below), no response shows
another family's or school's children, the database is unchanged by refused writes and by every GET, and every
state-changing web route refuses a POST without a CSRF token (400).

A new route must be classified in POLICY: the test fails naming it until it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import inspect, select, text
from werkzeug.routing import Rule

from tests.webapp.factories import World, api_token, bearer, create_user, csrf_token, sign_in, two_families
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    BureauCalendar,
    CalendarDay,
    CalendarDayKind,
    District,
    DutyTeacher,
    NotificationEvent,
    Pin,
    Pupil,
    Session,
    Teacher,
)
from webapp.notifications import notify

PUBLIC, ACCOUNT, PARENT, ADMIN, BUREAU, API = "public", "account", "parent", "school_admin", "bureau", "api"
DUTY = "duty_teacher"
POLICY: dict[str, str] = {
    "index": PUBLIC, "static": PUBLIC, "auth.login": PUBLIC, "auth.register": PUBLIC, "auth.logout": PUBLIC,
    "auth.set_language": PUBLIC, "api.openapi": PUBLIC, "api.create_token": PUBLIC,
    "auth.account": ACCOUNT, "auth.export": ACCOUNT, "auth.change_password": ACCOUNT,
    "auth.logout_others": ACCOUNT,
    "auth.privacy_notice": PUBLIC, "auth.forgot_password": PUBLIC, "auth.reset_sms": PUBLIC,
    "auth.reset_password": PUBLIC, "auth.delete_account": PARENT, "parents.unlink": PARENT,
    "admin.reset_code": ADMIN, "admin.school_contact": ADMIN,
    "parents.home": PARENT, "parents.child": PARENT, "parents.withdraw": PARENT, "parents.link": PARENT,
    "parents.consent": PARENT, "parents.change": PARENT, "parents.accept_offer": PARENT,
    "parents.decline_offer": PARENT,
    "bureau.dashboard": BUREAU, "bureau.advice": BUREAU, "bureau.compute_advice": BUREAU,
    "bureau.start_batch_view": BUREAU, "bureau.batch": BUREAU, "bureau.batch_status": BUREAU,
    "bureau.district": BUREAU, "bureau.export": BUREAU, "bureau.hiring": BUREAU,
    "bureau.hiring_export": BUREAU, "bureau.batches": BUREAU, "bureau.district_advice": BUREAU,
    "bureau.school": BUREAU, "bureau.groups": BUREAU, "bureau.group_edit": BUREAU,
    "bureau.calendars": BUREAU, "bureau.calendar": BUREAU, "bureau.calendar_import": BUREAU,
    "bureau.calendar_publish": BUREAU, "bureau.calendar_entry_remove": BUREAU, "bureau.calendar_template": BUREAU,
    "api.children": API, "api.child": API, "api.options": API, "api.get_request": API, "api.put_request": API,
    "api.delete_request": API, "api.result": API, "api.post_change": API, "api.list_offers": API,
    "api.accept_offer": API, "api.decline_offer": API, "api.me": API, "api.revoke_token": API,
    "api.notifications": API, "api.read_notification": API,
    "api.attendance": API, "api.post_absence": API, "api.delete_absence": API, "api.list_pickup_persons": API,
    "api.post_pickup_person": API, "api.delete_pickup_person": API, "api.post_delegate": API,
    "api.get_notice": API, "api.post_notice": API,
    "daily.child": PARENT, "daily.report_absence": PARENT, "daily.cancel_absence": PARENT,
    "daily.add_pickup_person": PARENT, "daily.remove_pickup_person": PARENT, "daily.create_delegate": PARENT,
    "daily.duty": DUTY, "daily.duty_session": DUTY, "daily.mark": DUTY, "daily.handover_page": DUTY,
    "daily.handover": DUTY, "daily.still_here": DUTY,
    "daily.calendar": ADMIN, "daily.calendar_template": ADMIN, "daily.calendar_entry_add": ADMIN,
    "daily.calendar_entry_remove": ADMIN,
    "daily.bureau": BUREAU, "daily.teacher_hours": ADMIN,
    "daily.notice_sign": PARENT, "daily.notice_admin": ADMIN, "daily.notice_report": ADMIN,
    "daily.class_teacher_list": ADMIN, "daily.alert_overview": ADMIN,
    "notifications.inbox_page": PARENT, "notifications.read": PARENT, "notifications.read_all": PARENT,
    "notifications.email": PARENT,
    "notifications.delivery_log": ADMIN, "notifications.resend": ADMIN,
}
for _endpoint in ("dashboard", "activities", "activity_delete", "activity_form", "codes", "import_data",
                  "import_confirm", "import_template", "pupils", "pupil_detail", "sessions", "session_delete",
                  "session_form", "teachers", "teacher_delete", "teacher_form", "choose_term", "window",
                  "window_now",
                  "place_pupil", "pupil_tag_add", "pupil_tag_remove", "priority_review", "pupil_leave",
                  "pupil_return"):
    POLICY[f"admin.{_endpoint}"] = ADMIN
for _endpoint in ("home", "index", "workbook", "classes", "class_list", "instance_export", "sessions",
                  "session_sheet", "solution_export", "teachers", "teacher_timetable", "waitlist_page",
                  "waitlist_fill"):
    POLICY[f"rosters.{_endpoint}"] = ADMIN
for _endpoint in ("index", "detail", "remove_assignment", "cancel", "publish", "status", "compare",
                  "delete_pin", "term_runs", "pins", "start", "history", "history_index", "offers"):
    POLICY[f"runs.{_endpoint}"] = ADMIN

ROLES = ("anonymous", "parent_a", "parent_b", "admin_x", "admin_y", "bureau", "duty_x")
ROLE_KIND = {"anonymous": None, "parent_a": PARENT, "parent_b": PARENT, "admin_x": ADMIN, "admin_y": ADMIN,
             "bureau": BUREAU, "duty_x": DUTY}
PARAM_RE = re.compile(r"<(?:(?P<conv>[a-z]+)(?:\((?P<args>[^)]*)\))?:)?(?P<name>\w+)>")
DENIED = {302, 401, 403, 404}
"""A refusal: to the login page (anonymous), 401 (API), 403 (wrong role), 404 (someone else's object)."""


@pytest.fixture
def matrix(app: Flask) -> Iterator[tuple[World, dict[str, Any]]]:
    # Jobs a request starts (batches, advice) finish inside it, so no later request sees their writes.
    app.config.update(JOBS_INLINE=True, BUREAU_TIME_LIMIT=1, BUREAU_ADVICE_TIME_LIMIT=1)
    world = two_families(app)
    with app.app_context():
        pupils = db.session.scalars(select(Pupil)).all()
        for pupil in pupils:  # unmistakable names, to find leaks in any page
            school = "甲" if pupil.school_id == world.ids["school_x"] else "乙"
            pupil.name = f"{school}校孩子{pupil.number}"
        for teacher in db.session.scalars(select(Teacher).where(Teacher.school_id == world.ids["school_y"])):
            teacher.name = f"乙校教师{teacher.code}"
        run_y = AllocationRun(term_id=world.ids["term_y"], state="done", status="OPTIMAL")
        db.session.add(run_y)
        first = {key: db.session.scalar(select(Session).where(Session.term_id == world.ids[f"term_{key}"]))
                 for key in ("x", "y")}
        teachers = {
            key: db.session.scalar(select(Teacher).where(Teacher.school_id == world.ids[f"school_{key}"]))
            for key in ("x", "y")}
        pins = {
            "x": Pin(term_id=world.ids["term_x"], pupil_id=world.ids["pupil_b"], session_id=first["x"].id),
            "y": Pin(term_id=world.ids["term_y"], pupil_id=world.ids["pupil_c"], session_id=first["y"].id),
        }
        db.session.add_all(pins.values())
        duty_x = create_user("duty_teacher", login="duty-x")
        db.session.add(DutyTeacher(user_id=duty_x.id, teacher_id=teachers["x"].id))
        world.logins["duty_x"] = "duty-x"
        messages = {key: notify(NotificationEvent.PLAN_AMENDED, pupil_id=world.ids[key])[0]
                    for key in ("pupil_a", "pupil_b", "pupil_c")}  # each with an SMS delivery (log provider)
        db.session.commit()
        world.ids.update({f"notification_{key[-1]}": row.id for key, row in messages.items()})
        other_district = db.session.scalar(select(District).where(District.name == "盘龙区"))
        assert other_district is not None
        own_district = db.session.scalar(select(District).where(District.name == "五华区"))
        assert own_district is not None
        calendars = {key: BureauCalendar(district_id=district.id, term_name="2026-autumn",
                                         first_day=date(2026, 9, 1), last_day=date(2027, 1, 22),
                                         days=[CalendarDay(day=date(2026, 10, 1), kind=CalendarDayKind.HOLIDAY)])
                     for key, district in (("x", own_district), ("y", other_district))}
        db.session.add_all(calendars.values())
        db.session.commit()
        objects = {
            "x": {"term_id": world.ids["term_x"], "run_id": world.ids["run_x"],
                  "calendar_id": calendars["x"].id, "entry_id": calendars["x"].days[0].id,
                  "school_id": world.ids["school_x"],
                  "session_id": first["x"].id, "teacher_id": teachers["x"].id,
                  "activity_id": first["x"].activity_id, "pin_id": pins["x"].id,
                  "pupil_id": world.ids["pupil_a"],
                  "notification_id": messages["pupil_a"].id, "delivery_id": messages["pupil_a"].deliveries[0].id,
                  "district_id": own_district.id},
            "y": {"term_id": world.ids["term_y"], "run_id": run_y.id, "school_id": world.ids["school_y"],
                  "calendar_id": calendars["y"].id, "entry_id": calendars["y"].days[0].id,
                  "session_id": first["y"].id, "teacher_id": teachers["y"].id,
                  "activity_id": first["y"].activity_id, "pin_id": pins["y"].id,
                  "pupil_id": world.ids["pupil_c"],
                  "notification_id": messages["pupil_c"].id, "delivery_id": messages["pupil_c"].deliveries[0].id,
                  "district_id": other_district.id},
        }
    yield world, objects


def _foreign(role: str, world: World, objects: dict[str, Any]) -> dict[str, Any]:
    """Ids of objects this role has no business with."""
    if role == "parent_a":
        return {**objects["y"], "pupil_id": world.ids["pupil_b"], "notification_id": world.ids["notification_b"]}
    if role == "parent_b":
        return {**objects["y"], "pupil_id": world.ids["pupil_a"], "notification_id": world.ids["notification_a"]}
    if role in ("admin_x", "bureau", "anonymous", "duty_x"):
        return objects["y"]
    return {**objects["x"], "pupil_id": world.ids["pupil_b"]}  # admin_y


def _forbidden_text(role: str) -> list[str]:
    """Children's names this role must never see."""
    x_children = [f"甲校孩子P00{i}" for i in range(1, 7)]
    y_children = [f"乙校孩子P00{i}" for i in range(1, 7)]
    if role == "parent_a":
        return [n for n in x_children if n != "甲校孩子P001"] + y_children
    if role == "parent_b":
        return [n for n in x_children if n != "甲校孩子P002"] + y_children
    if role in ("admin_x", "duty_x"):
        return y_children + ["乙校教师"]
    if role == "admin_y":
        return x_children
    return x_children + y_children  # anonymous and the bureau see no child by name


def _url(rule: Rule, values: dict[str, Any]) -> str:
    def fill(match: re.Match[str]) -> str:
        name, conv, args = match.group("name"), match.group("conv"), match.group("args")
        if name in values:
            return str(values[name])
        if conv == "any" and args:
            return args.split(",")[0].strip().strip("'\"")
        defaults = {"kind": "pupils", "fmt": "xlsx", "code": "en", "action": "open", "class_name": "3-1",
                    "filename": "css/app.css", "batch_id": "no-such-batch"}
        return defaults.get(name, "1")

    return PARAM_RE.sub(fill, rule.rule)


def _snapshot() -> dict[str, Any]:
    """Every table except the audit log, tokens and users (login bookkeeping), row by row."""
    tables = sorted(set(inspect(db.engine).get_table_names()) - {"audit_log", "api_tokens", "users"})
    state = {}
    for table in tables:
        rows = db.session.execute(text(f'SELECT * FROM "{table}"')).all()
        state[table] = sorted(repr(tuple(row)) for row in rows)
    return state


def _clients(app: Flask, world: World) -> dict[str, tuple[FlaskClient, str | None]]:
    clients: dict[str, tuple[FlaskClient, str | None]] = {}
    for role in ROLES:
        client = app.test_client()
        token = None
        if role != "anonymous":
            sign_in(client, world.logins[role])
            if role.startswith("parent"):
                token = api_token(app.test_client(), world.logins[role])
        clients[role] = (client, token)
    return clients


def _allowed(policy: str, role: str) -> bool:
    if policy == PUBLIC:
        return True
    if policy == ACCOUNT:
        return role != "anonymous"
    if policy == API:
        return ROLE_KIND[role] == PARENT
    return ROLE_KIND[role] == policy


def test_every_route_is_classified(app: Flask) -> None:
    unknown = sorted({rule.endpoint for rule in app.url_map.iter_rules()} - set(POLICY))
    assert not unknown, ("classify these endpoints in POLICY of tests/webapp/test_access_matrix.py "
                         f"(public, account, parent, school_admin, bureau, duty_teacher or api): {unknown}")


def test_access_matrix(app: Flask, matrix: tuple[World, dict[str, Any]]) -> None:
    world, objects = matrix
    app.config["PROPAGATE_EXCEPTIONS"] = False
    clients = _clients(app, world)
    problems: list[str] = []
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.rule)
    for rule in rules:
        policy = POLICY.get(rule.endpoint)
        if policy is None or rule.endpoint in ("auth.logout", "auth.logout_others", "api.revoke_token"):
            continue  # unclassified ones fail the test above; sign-outs would end the sessions used here
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        for role in ROLES:
            client, token = clients[role]
            url = _url(rule, _foreign(role, world, objects))
            has_ids = any(name.endswith("_id") for name in rule.arguments)
            for method in methods:
                headers = bearer(token) if token and policy == API else {}
                with app.app_context():
                    before = _snapshot()
                data: dict[str, Any] = {}
                if method == "POST" and policy != API:
                    data["csrf_token"] = csrf_token(client, "/account" if role != "anonymous" else "/login")
                response = client.open(url, method=method, headers=headers, data=data or None,
                                       json={} if policy == API and method in ("PUT", "POST") else None)
                status = response.status_code
                binary = response.mimetype.startswith("application/vnd.")
                body = "" if binary else response.get_data(as_text=True)
                response.close()
                where = f"{method} {url} as {role} ({rule.endpoint}) -> {status}"
                if status >= 500:
                    problems.append(f"server error: {where}")
                allowed = _allowed(policy, role)
                if not allowed and status not in DENIED:
                    problems.append(f"not refused: {where}")
                if not allowed and role == "anonymous" and policy not in (API,) and status == 302 \
                        and "/login" not in (response.location or ""):
                    problems.append(f"anonymous not sent to login: {where}")
                if allowed and has_ids and policy in (PARENT, ADMIN, BUREAU, API) and status not in DENIED:
                    problems.append(f"someone else's object served: {where}")
                for name in _forbidden_text(role):
                    if name in body:
                        problems.append(f"leaks {name}: {where}")
                        break
                with app.app_context():
                    after = _snapshot()
                if before != after and (method == "GET" or not allowed or has_ids):
                    changed = sorted(t for t in before if before[t] != after[t])
                    problems.append(f"data changed ({', '.join(changed)}): {where}")
    assert not problems, "\n".join(problems)


def test_state_changing_routes_need_csrf(app: Flask, matrix: tuple[World, dict[str, Any]]) -> None:
    world, objects = matrix
    clients = _clients(app, world)
    problems = []
    for rule in app.url_map.iter_rules():
        policy = POLICY.get(rule.endpoint)
        if policy in (None, API) or rule.endpoint.startswith("api.") or "POST" not in (rule.methods or set()):
            continue
        role = {PARENT: "parent_a", ADMIN: "admin_x", BUREAU: "bureau", ACCOUNT: "parent_a",
                DUTY: "duty_x"}.get(policy or "", "anonymous")
        client, _token = clients[role]
        own = {"parent_a": {**objects["x"], "pupil_id": world.ids["pupil_a"]}, "admin_x": objects["x"],
               "bureau": objects["x"], "anonymous": objects["x"], "duty_x": objects["x"]}[role]
        with app.app_context():
            before = _snapshot()
        response = client.post(_url(rule, own), data={"x": "1"})
        with app.app_context():
            unchanged = _snapshot() == before
        if response.status_code != 400 or not unchanged:
            problems.append(f"POST {_url(rule, own)} as {role} without CSRF -> {response.status_code}"
                            f"{'' if unchanged else ', data changed'}")
    assert not problems, "\n".join(problems)
