"""Children's data: consent before linking, the family's JSON export, purging past terms on a frozen clock."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from scheduler.fairness import fairness
from tests.conftest import TEST_ENROLMENT_CODE, make_school
from tests.scheduler import builders as sb
from tests.webapp.factories import SchoolIds, create_user, post_form
from webapp.extensions import db
from webapp.hardening import account_key
from webapp.models import (
    AllocationRun,
    ApiToken,
    AuditLog,
    CareRequest,
    Guardianship,
    Pin,
    Pupil,
    RunAssignment,
    RunStaffing,
    RunUnserved,
    School,
    Session,
    Teacher,
    Term,
    User,
)
from webapp.privacy import purge, term_end
from webapp.run_metrics import fairness_counts

NOW = datetime(2025, 10, 1, 8, 0)


def _pupil(school: School, number: str) -> Pupil:
    pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == number))
    assert pupil is not None
    return pupil


# ------------------------------------------------------------------------------------------ consent


def test_registration_and_linking_record_consent(app: Flask, client: FlaskClient, school: SchoolIds) -> None:
    refused = post_form(client, "/register", {"phone": "13912340000", "password": "river-lamp-seven",
                                              "confirm": "river-lamp-seven"})
    assert refused.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count(User.id))) == 0
    assert post_form(client, "/register", {"phone": "13912340000", "password": "river-lamp-seven",
                                           "confirm": "river-lamp-seven", "consent": "y"}).status_code == 302
    assert post_form(client, "/login", {"login": "13912340000", "password": "river-lamp-seven"}).status_code == 302
    link_form = {"school_code": "KM-TEST-0001", "pupil_number": "P003", "enrolment_code": TEST_ENROLMENT_CODE,
                 "relation": "father"}
    assert post_form(client, "/family/link", link_form).status_code == 200  # no consent for the child
    with app.app_context():
        assert db.session.scalar(select(func.count(Guardianship.id))) == 0
    linked = post_form(client, "/family/link", {**link_form, "consent": "y"})
    assert linked.status_code == 302, linked.get_data(as_text=True)
    with app.app_context():
        user = db.session.scalar(select(User).where(User.phone == "13912340000"))
        assert user is not None and user.consent_policy_version == app.config["CONSENT_POLICY_VERSION"]
        link = db.session.scalar(select(Guardianship).where(Guardianship.user_id == user.id))
        assert link is not None and link.consent_policy_version == user.consent_policy_version
        assert link.consent_at is not None and user.consent_at is not None
        assert link.consent_at >= user.consent_at
        actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.user_id == user.id)))
        assert {"auth.register", "family.link_child"} <= actions


# ------------------------------------------------------------------------------------------ export


def test_family_export(app: Flask, client: FlaskClient, published_run: int,
                       signed_in: Callable[..., User]) -> None:
    user = signed_in("parent")
    with app.app_context():
        school = db.session.scalars(select(School)).one()
        create_user("parent", login="13700000002", pupil=_pupil(school, "P002"))
    response = client.get("/account/export")
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    data = json.loads(response.get_data(as_text=True))
    assert data["account"]["phone"] == user.phone
    assert data["account"]["consent"]["policy_version"] == "2026-01"
    assert [child["number"] for child in data["children"]] == ["P001"]
    child = data["children"][0]
    assert child["name"] == "学生1" and child["relation"] == "母亲" and child["consent"]["given_at"]
    assert child["requests"][0]["days"] == [1, 2] and child["requests"][0]["term"] == "2026-autumn"
    result = child["results"][0]
    assert {slot["day"] for slot in result["timetable"]} == {1}
    assert result["uncovered"][0]["day"] == 2 and result["uncovered"][0]["waitlist_position"] == 2
    assert "auth.login" in {a["action"] for a in data["activity"]}
    body = response.get_data(as_text=True)
    assert "学生2" not in body and "13700000002" not in body and "password" not in body
    with app.app_context():
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "family.export")) is not None


def test_export_for_staff_and_anonymous(app: Flask, client: FlaskClient,
                                        signed_in: Callable[..., User]) -> None:
    assert client.get("/account/export").status_code == 302
    signed_in("school_admin")
    data = client.get("/account/export").get_json()
    assert data["account"]["role"] == "school_admin" and data["account"]["school"] == "KM-TEST-0001"
    assert data["children"] == []


# ------------------------------------------------------------------------------------------ purge


def _term(school: School, name: str, opens: datetime, closes: datetime, results: date | None) -> Term:
    term = Term(school=school, name=name, requests_open_at=opens, requests_close_at=closes,
                results_date=results, weekdays=[1, 2], priority_weights={"0": 1}, lottery_seed=1)
    db.session.add(term)
    db.session.flush()
    return term


def _copy_sessions(source: Term, target: Term) -> dict[str, Session]:
    """The old term gets a copy of one session so runs and pins have something to point at."""
    original = source.sessions[0]
    period = source.periods[0]
    activity = source.activities[0]
    session = Session(term=target, code=original.code, activity=activity, day=1, period=period, capacity=10,
                      pupils_per_teacher=10)
    db.session.add(session)
    db.session.flush()
    return {session.code: session}


def _request(term: Term, pupil: Pupil) -> None:
    db.session.add(CareRequest(term_id=term.id, pupil_id=pupil.id, days=[1], pickup_time="16:30",
                               periods=["P1"], preferences=[], status="active"))


def _run(term: Term, pupils: list[Pupil], session: Session, teacher: Teacher) -> AllocationRun:
    run = AllocationRun(term_id=term.id, state="done", status="OPTIMAL", coverage=len(pupils),
                        demand=len(pupils), metrics={"coverage": len(pupils)})
    db.session.add(run)
    db.session.flush()
    for pupil in pupils:
        db.session.add(RunAssignment(run_id=run.id, pupil_id=pupil.id, session_id=session.id))
        db.session.add(RunUnserved(run_id=run.id, pupil_id=pupil.id, day=2, code="no_seat", reason="x"))
    db.session.add(RunStaffing(run_id=run.id, teacher_id=teacher.id, session_id=session.id))
    return run


@pytest.fixture
def history(app: Flask) -> dict[str, Any]:
    """School A: an old term (autumn 2024) and the current one; B: one term long past; C: no term at all."""
    app.config["NOW"] = NOW
    with app.app_context():
        a = make_school("KM-TEST-0001", n_pupils=5)
        current = db.session.scalars(select(Term).where(Term.school_id == a.id)).one()
        current.name, current.requests_open_at = "2025-autumn", datetime(2025, 8, 20)
        current.requests_close_at, current.results_date = datetime(2025, 9, 5), date(2025, 9, 10)
        old = _term(a, "2024-autumn", datetime(2024, 8, 20), datetime(2024, 9, 5), date(2024, 9, 10))
        old_sessions = _copy_sessions(current, old)
        p1, p2, p3, p4, p5 = (_pupil(a, f"P00{i}") for i in range(1, 6))
        for pupil in (p1, p2):
            _request(old, pupil)
        _request(current, p1)
        _request(current, p4)
        p3.active = False  # left the school, only old data
        p4.active = False  # left, but still has a request this term
        teacher = db.session.scalars(select(Teacher).where(Teacher.school_id == a.id)).first()
        assert teacher is not None
        old_run = _run(old, [p1, p2, p3], old_sessions["S11"], teacher)
        current_run = _run(current, [p1], current.sessions[0], teacher)
        db.session.add(Pin(term_id=old.id, pupil_id=p3.id, session_id=old_sessions["S11"].id))
        parent_a = create_user("parent", login="13700000001", pupil=p3)
        create_user("parent", login="13700000003", pupil=p5)

        b = make_school("KM-TEST-0002", n_pupils=2)
        b_term = db.session.scalars(select(Term).where(Term.school_id == b.id)).one()
        b_term.requests_open_at, b_term.requests_close_at = datetime(2022, 8, 20), datetime(2022, 9, 5)
        b_term.results_date = date(2022, 9, 10)
        _request(b_term, _pupil(b, "P001"))
        parent_b = create_user("parent", login="13700000002", pupil=_pupil(b, "P002"))

        c = make_school("KM-TEST-0003", n_pupils=2)
        db.session.delete(db.session.scalars(select(Term).where(Term.school_id == c.id)).one())

        db.session.add_all([
            AuditLog(at=datetime(2024, 9, 1), action="request.submit", detail={"days": [1]}),
            AuditLog(at=datetime(2025, 9, 20), action="request.submit", detail={"days": [2]}),
        ])
        db.session.commit()
        return {"old_run": old_run.id, "current_run": current_run.id, "old": old.id, "current": current.id,
                "parent_a": parent_a.id, "parent_b": parent_b.id, "school_c": c.id}


def _snapshot() -> dict[str, Any]:
    def count(model: Any) -> int:
        return int(db.session.scalar(select(func.count()).select_from(model)) or 0)

    return {
        "requests": sorted((r.term_id, r.pupil_id) for r in db.session.scalars(select(CareRequest))),
        "pupils": sorted(f"{p.school.code}/{p.number}" for p in db.session.scalars(select(Pupil))),
        "guardianships": count(Guardianship), "assignments": count(RunAssignment),
        "unserved": count(RunUnserved), "staffing": count(RunStaffing), "pins": count(Pin),
        "runs": count(AllocationRun), "users": count(User),
        "details": sorted(str(a.detail) for a in db.session.scalars(select(AuditLog))),
    }


def test_term_end(app: Flask) -> None:
    earlier = Term(name="a", requests_open_at=datetime(2024, 2, 1), results_date=date(2024, 3, 1))
    later = Term(name="b", requests_open_at=datetime(2024, 8, 20))
    assert term_end(earlier, later) == datetime(2024, 8, 20)
    assert term_end(earlier, None) == datetime(2024, 8, 31)  # results date + 183 days
    assert term_end(Term(name="c"), None) is None


def test_nothing_expires_within_retention(app: Flask, history: dict[str, Any]) -> None:
    with app.app_context():
        before = _snapshot()
        report = purge(365 * 4)
        assert report.expired_terms == [] and _snapshot()["requests"] == before["requests"]
        assert _snapshot()["pupils"] == before["pupils"]


def test_purge_past_terms(app: Flask, history: dict[str, Any]) -> None:
    with app.app_context():
        before = _snapshot()
        dry = purge(30, dry_run=True)
        assert _snapshot() == before  # a dry run changes nothing
        report = purge(30)
        assert report.counts == dry.counts
        assert sorted(report.expired_terms) == ["KM-TEST-0001/2024-autumn", "KM-TEST-0002/2026-autumn"]
        after = _snapshot()
        current, old = history["current"], history["old"]
        p = {f"{x.school.code}/{x.number}": x.id for x in db.session.scalars(select(Pupil))}
        # only this term's requests survive: P001's and the departed P004's
        kept = [(current, p["KM-TEST-0001/P001"]), (current, p["KM-TEST-0001/P004"])]
        assert after["requests"] == sorted(kept)
        # P003 left and has only old data; school B has no current term; school C has no term at all
        assert after["pupils"] == ["KM-TEST-0001/P001", "KM-TEST-0001/P002", "KM-TEST-0001/P004",
                                   "KM-TEST-0001/P005", "KM-TEST-0003/P001", "KM-TEST-0003/P002"]
        assert report.counts["pupils"] == 3 and report.counts["guardianships"] == 2
        # parent of P005 keeps the link; the parents who lost theirs registered after the cutoff and remain
        assert after["guardianships"] == 1
        assert after["users"] == before["users"]
        assert after["runs"] == before["runs"] and after["pins"] == 0
        assert db.session.scalar(select(func.count()).select_from(RunAssignment)
                                 .where(RunAssignment.run_id == history["old_run"])) == 0
        assert after["assignments"] == 1 and after["unserved"] == 1 and after["staffing"] == 1
        assert "{'days': [1]}" not in after["details"] and "{'days': [2]}" in after["details"]
        old_run = db.session.get(AllocationRun, history["old_run"])
        assert old_run is not None and old_run.coverage == 3  # aggregate figures stay
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "privacy.purge")) is not None
        assert db.session.get(Term, old) is not None
        assert purge(30).counts["care requests"] == 0  # running it again deletes nothing more


def test_purge_term_command(app: Flask, history: dict[str, Any]) -> None:
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["purge-term", "--retention-days", "30", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would delete 3 care requests" in dry.output and "KM-TEST-0001/2024-autumn" in dry.output
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(CareRequest)) == 5
    done = runner.invoke(args=["purge-term", "--retention-days", "30"])
    assert done.exit_code == 0 and "deleted 3 care requests" in done.output
    default = runner.invoke(args=["purge-term"])
    assert default.exit_code == 0 and "expired terms: KM-TEST-0002" in default.output
    assert "deleted 0 care requests" in default.output
    bad = runner.invoke(args=["purge-term", "--retention-days", "-1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output


def test_purge_deletes_idle_parents_left_without_children(app: Flask, history: dict[str, Any]) -> None:
    """With 30 days' retention the cutoff is 2025-09-01: P003's and school B's parents lose their children."""
    with app.app_context():
        parent_a = db.session.get(User, history["parent_a"])
        parent_b = db.session.get(User, history["parent_b"])
        assert parent_a is not None and parent_b is not None
        parent_a.created_at, parent_a.last_login_at = datetime(2023, 5, 1), datetime(2025, 6, 1)
        parent_b.created_at, parent_b.last_login_at = datetime(2023, 5, 1), datetime(2025, 9, 15)
        never_linked = create_user("parent", login="13700000004")  # registered, never signed in, no child
        never_linked.created_at = datetime(2023, 1, 1)
        app_user = create_user("parent", login="13700000005")  # no child, signs in only through the API
        app_user.created_at, app_user.last_login_at = datetime(2023, 1, 1), datetime(2024, 1, 1)
        staff = create_user("school_admin", login="admin-old")
        staff.created_at, staff.last_login_at = datetime(2022, 1, 1), datetime(2023, 1, 1)
        keeps_child = db.session.scalar(select(User).where(User.phone == "13700000003"))
        assert keeps_child is not None
        keeps_child.created_at, keeps_child.last_login_at = datetime(2022, 1, 1), datetime(2023, 1, 1)
        db.session.add_all([
            ApiToken(user_id=parent_a.id, token_hash="a" * 64, created_at=datetime(2025, 5, 1),
                     expires_at=datetime(2025, 10, 30)),
            ApiToken(user_id=app_user.id, token_hash="b" * 64, created_at=datetime(2025, 8, 1),
                     expires_at=datetime(2025, 10, 30), last_used_at=datetime(2025, 9, 20)),
            AuditLog(at=datetime(2025, 9, 25), action="auth.login_failed", target=account_key("13700000001"),
                     user_id=parent_a.id, detail={"known_account": True}),
            AuditLog(at=datetime(2025, 6, 1), action="auth.login", target=f"user:{parent_a.id}", user_id=parent_a.id),
        ])
        current = db.session.get(Term, history["current"])
        assert current is not None
        request = db.session.scalar(select(CareRequest).where(CareRequest.term_id == current.id))
        assert request is not None
        request.submitted_by = parent_a.id  # a request parent A once sent for a child still at school
        db.session.commit()
        ids = {"parent_a": parent_a.id, "never_linked": never_linked.id}
        users_before = set(db.session.scalars(select(User.id)))

        dry = purge(30, dry_run=True)
        assert set(db.session.scalars(select(User.id))) == users_before
        report = purge(30)
        assert report.counts == dry.counts and report.counts["parent accounts"] == 2
        assert set(db.session.scalars(select(User.id))) == users_before - set(ids.values())
        assert db.session.scalars(select(ApiToken.user_id)).all() == [app_user.id]
        db.session.expire_all()
        assert db.session.get(CareRequest, request.id).submitted_by is None  # type: ignore[union-attr]
        signed_in = AuditLog.action.in_(["auth.login", "auth.login_failed"])
        rows = db.session.scalars(select(AuditLog).where(signed_in)).all()
        assert len(rows) == 2 and all(row.user_id is None for row in rows)
        dump = repr([(row.action, row.target, row.detail, row.user_id) for row in db.session.scalars(
            select(AuditLog))])
        assert "13700000001" not in dump and account_key("13700000001") not in dump
        assert purge(30).counts["parent accounts"] == 0


def test_purge_term_command_counts_accounts(app: Flask, history: dict[str, Any]) -> None:
    with app.app_context():
        create_user("parent", login="13700000004").created_at = datetime(2023, 1, 1)
        db.session.commit()
    runner = app.test_cli_runner()
    dry = runner.invoke(args=["purge-term", "--retention-days", "30", "--dry-run"])
    assert dry.exit_code == 0 and "would delete 1 parent accounts" in dry.output
    done = runner.invoke(args=["purge-term", "--retention-days", "30"])
    assert done.exit_code == 0 and "deleted 1 parent accounts" in done.output
    with app.app_context():
        assert db.session.scalar(select(User).where(User.phone == "13700000004")) is None


def test_purge_keeps_fairness_counts_and_drops_the_names(app: Flask, history: dict[str, Any]) -> None:
    with app.app_context():
        # Siblings P001 (seated) and P002 (not); P004 (priority 2) waits while P001 (priority 0) holds a seat.
        plan = sb.instance([sb.session("S11", capacity=2)], [],
                           [sb.pupil("P001", family="F1"), sb.pupil("P002", family="F1"),
                            sb.pupil("P003", priority=2), sb.pupil("P004", priority=2)],
                           [sb.request(number) for number in ("P001", "P002", "P003", "P004")])
        report = fairness(plan, sb.solution([("P001", "S11"), ("P003", "S11")])).to_dict()
        assert report["justified_envy"]["count"] == 1 and report["split_families"] == ["F1"]
        runs = {key: db.session.get(AllocationRun, history[key]) for key in ("old_run", "current_run")}
        for run in runs.values():
            assert run is not None
            run.metrics = {**(run.metrics or {}), "fairness": report}
        db.session.commit()
        old_metrics = runs["old_run"].metrics
        assert old_metrics["fairness"]["worst_served"], "the old run names pupils before the purge"
        counts = fairness_counts(old_metrics)
        current_metrics = runs["current_run"].metrics
        summary = dict(runs["old_run"].summary or {})
        assert summary["fairness"]["justified_envy"] == 1 and summary["requesting"] > 0

        assert purge(30, dry_run=True).counts["fairness lists"] == 1
        assert db.session.get(AllocationRun, history["old_run"]).metrics == old_metrics, "a dry run keeps them"
        assert purge(30).counts["fairness lists"] == 1
        db.session.expire_all()
        purged = db.session.get(AllocationRun, history["old_run"]).metrics
        assert "fairness" not in purged and fairness_counts(purged) == counts
        assert db.session.get(AllocationRun, history["old_run"]).summary == summary, \
            "the bureau's figures of a purged run, fairness included, stay as they were (its rows are gone)"
        assert purged["coverage"] == old_metrics["coverage"], "the other figures stay"
        assert not any(f'"{number}"' in json.dumps(purged) for number in ("P001", "P002", "P003", "P004"))
        assert '"F1"' not in json.dumps(purged)
        assert db.session.get(AllocationRun, history["current_run"]).metrics == current_metrics
        assert purge(30).counts["fairness lists"] == 0
