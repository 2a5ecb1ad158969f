"""The plan on the web: publish confirmation, plan history, offers for parents and admins, change requests."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.webapp.factories import (
    create_user,
    post_form,
    publish,
    pupil,
    request,
    session,
    sign_in,
    small_term,
    teacher,
)
from webapp.allocation import service
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    CareRequest,
    ChangeRequest,
    PlanAmendment,
    Pupil,
    RunAssignment,
    RunStaffing,
    Term,
    WaitlistOffer,
    utcnow,
)


def _id(number: str) -> int:
    found = db.session.scalar(select(Pupil.id).where(Pupil.number == number).order_by(Pupil.id))
    assert found is not None
    return found


def _term(placement: str = "offer", code: str = "KM-WL-0001") -> Term:
    """Session A (day 1) is full with S1, S2; W1, W2 wait for it. Session B (day 2) seats everyone."""
    seated, waiting = [pupil("S1"), pupil("S2")], [pupil("W1"), pupil("W2")]
    everyone = seated + waiting
    term = small_term([session("A", capacity=2, ppt=4), session("B", day=2, capacity=99, ppt=99)],
                      [teacher("T1", [(1, "P1"), (2, "P1")])], everyone,
                      [request(p.id, days=(1, 2)) for p in everyone], placement=placement, code=code)
    publish(term, [(p.id, "A") for p in seated] + [(p.id, "B") for p in everyone], [("T1", "A"), ("T1", "B")])
    return term


def _world(app: Flask) -> dict[str, Any]:
    """A published term with one open offer (S2 withdrew), its admin, the families, and another school."""
    with app.app_context():
        term = _term()
        term.ends_on = date.today() + timedelta(days=60)
        other = _term(code="KM-WL-0002")
        parents = {n: create_user("parent", login=f"139{i:08d}", pupil=db.session.get(Pupil, _id(n)))
                   for i, n in enumerate(["S1", "S2", "W1", "W2"])}
        admin = create_user("school_admin", school=term.school, login="plan-admin")
        create_user("school_admin", school=other.school, login="other-admin")
        service.withdraw_request(db.session.scalar(select(CareRequest).where(CareRequest.pupil_id == _id("S2"))),
                                 actor=parents["S2"], at=utcnow())
        offer = db.session.scalar(select(WaitlistOffer).where(WaitlistOffer.state == "open"))
        assert offer is not None
        holder = next(n for n in ("W1", "W2") if _id(n) == offer.pupil_id)
        return {"term": term.id, "other": other.id, "run": term.published_run_id, "admin": admin.id,
                "offer": offer.id, "holder": parents[holder].phone, "holder_pupil": offer.pupil_id,
                "stranger": parents["W2" if holder == "W1" else "W1"].phone,
                "s1": parents["S1"].phone, "s1_pupil": _id("S1")}


def _count(model: Any) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def _draft(app: Flask, term_id: int) -> int:
    """A finished, unpublished run of the term that drops S1's day-2 seat and keeps everything else."""
    with app.app_context():
        term = db.session.get(Term, term_id)
        assert term is not None
        published = db.session.get(AllocationRun, term.published_run_id)
        run = AllocationRun(term_id=term_id, state="done", status="FEASIBLE", coverage=published.coverage,
                            demand=published.demand)
        db.session.add(run)
        db.session.flush()
        s1 = _id("S1")
        for row in db.session.scalars(select(RunAssignment).where(RunAssignment.run_id == published.id)):
            if row.pupil_id == s1 and row.session_id != min(s.id for s in term.sessions):
                continue
            db.session.add(RunAssignment(run_id=run.id, pupil_id=row.pupil_id, session_id=row.session_id))
        for staff in db.session.scalars(select(RunStaffing).where(RunStaffing.run_id == published.id)):
            db.session.add(RunStaffing(run_id=run.id, teacher_id=staff.teacher_id, session_id=staff.session_id))
        db.session.commit()
        return run.id


# ------------------------------------------------------------------------------------------ admin pages


def test_publish_confirmation_shows_the_difference_then_publishes(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    draft = _draft(app, world["term"])
    sign_in(client, "plan-admin")
    page = client.get(f"/admin/runs/{draft}/publish").get_data(as_text=True)
    assert "学生S1" in page and "减少的学生·天数" in page and "发布本次分配</button>" in page
    with app.app_context():
        versions = _count(PlanAmendment)
    response = post_form(client, f"/admin/runs/{draft}/publish", {"expected": str(world["run"])})
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, world["term"])
        assert term is not None and term.published_run_id == draft and _count(PlanAmendment) == versions + 1
        latest = db.session.scalar(select(PlanAmendment).order_by(PlanAmendment.version.desc()))
        assert latest is not None and latest.kind == "republish"
        assert {(c.pupil_id, c.gained) for c in latest.changes} == {(world["s1_pupil"], False)}


def test_publish_confirmation_in_english_counts_and_window_open(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    draft = _draft(app, world["term"])
    sign_in(client, "plan-admin")
    client.set_cookie("lang", "en")
    page = client.get(f"/admin/runs/{draft}/publish").get_data(as_text=True)
    assert "Pupil-days lost" in page and "<dd>1</dd>" in page
    assert "Publish this run</button>" in page
    with app.app_context():
        term = db.session.get(Term, world["term"])
        assert term is not None
        term.requests_close_at = utcnow() + timedelta(days=1)
        db.session.commit()
    page = client.get(f"/admin/runs/{draft}/publish").get_data(as_text=True)
    assert "Close the request window before publishing" in page
    assert "Publish this run</button>" not in page
    response = post_form(client, f"/admin/runs/{draft}/publish", {"expected": str(world["run"])},
                         token_from=f"/admin/runs/{draft}")
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, world["term"])
        assert term is not None and term.published_run_id == world["run"]


def test_history_and_offers_pages_for_the_school_only(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    sign_in(client, "plan-admin")
    page = client.get(f"/admin/runs/term/{world['term']}/history").get_data(as_text=True)
    assert "第 1 版" in page and "家庭撤回申请" in page
    assert "学生S2" in page  # S2's lost seats are listed
    assert client.get("/admin/runs/history").status_code == 302
    page = client.get(f"/admin/runs/term/{world['term']}/offers").get_data(as_text=True)
    with app.app_context():
        holder = db.session.get(Pupil, world["holder_pupil"])
        assert holder is not None and holder.name in page
    other = app.test_client()
    sign_in(other, "other-admin")
    assert other.get(f"/admin/runs/term/{world['term']}/history").status_code == 404
    assert other.get(f"/admin/runs/term/{world['term']}/offers").status_code == 404
    assert other.get(f"/admin/runs/{world['run']}/publish").status_code == 404


def test_placement_form_sets_the_hold_time_and_refuses_bad_input(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    sign_in(client, "plan-admin")
    url = f"/admin/runs/term/{world['term']}/offers"
    response = post_form(client, url, {"placement": "offer", "hold_hours": "0"})
    assert response.status_code == 400
    response = post_form(client, url, {"placement": "offer", "hold_hours": "24"})
    assert response.status_code == 302
    with app.app_context():
        term = db.session.get(Term, world["term"])
        assert term is not None and term.school.offer_hold_hours == 24 and term.placement == "offer"
    assert client.post(url, data={"placement": "automatic", "hold_hours": "24"}).status_code == 400  # no CSRF


# ------------------------------------------------------------------------------------------ parents


def test_a_family_accepts_its_offer_and_a_stranger_gets_404(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    stranger = app.test_client()
    sign_in(stranger, world["stranger"])
    token_page = "/family/"
    assert post_form(stranger, f"/family/offers/{world['offer']}/accept", token_from=token_page).status_code == 404
    assert stranger.get(f"/family/offers/{world['offer']}/decline").status_code == 404
    assert post_form(stranger, "/family/offers/99999/accept", token_from=token_page).status_code == 404
    sign_in(client, world["holder"])
    page = client.get(f"/family/child/{world['holder_pupil']}").get_data(as_text=True)
    assert f"/family/offers/{world['offer']}/accept" in page and "北京时间" in page
    assert client.post(f"/family/offers/{world['offer']}/accept").status_code == 400  # no CSRF
    response = post_form(client, f"/family/offers/{world['offer']}/accept",
                         token_from=f"/family/child/{world['holder_pupil']}")
    assert response.status_code == 302
    with app.app_context():
        offer = db.session.get(WaitlistOffer, world["offer"])
        assert offer is not None and offer.state == "accepted"
        versions = _count(PlanAmendment)
    again = post_form(client, f"/family/offers/{world['offer']}/accept", token_from=token_page)
    assert again.status_code == 409 and "已经" in again.get_data(as_text=True)
    with app.app_context():
        assert _count(PlanAmendment) == versions


def test_declining_needs_a_confirmation_and_an_expired_offer_is_409(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    sign_in(client, world["holder"])
    page = client.get(f"/family/offers/{world['offer']}/decline").get_data(as_text=True)
    assert "<form" in page and "<script" not in page.split("<main", 1)[-1].split("</main>", 1)[0]
    with app.app_context():
        offer = db.session.get(WaitlistOffer, world["offer"])
        assert offer is not None
        expires = offer.expires_at
    app.config["NOW"] = expires + timedelta(minutes=1)
    late = post_form(client, f"/family/offers/{world['offer']}/decline", token_from="/family/")
    assert late.status_code == 409 and "expired" not in late.get_data(as_text=True).lower()
    app.config["NOW"] = None
    with app.app_context():
        offer = db.session.get(WaitlistOffer, world["offer"])
        assert offer is not None and offer.state == "open"  # refused: nothing written


def test_decline_on_time(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    sign_in(client, world["holder"])
    response = post_form(client, f"/family/offers/{world['offer']}/decline")
    assert response.status_code == 302
    with app.app_context():
        offer = db.session.get(WaitlistOffer, world["offer"])
        assert offer is not None and offer.state == "declined"
    page = client.get(f"/family/offers/{world['offer']}/decline").get_data(as_text=True)
    assert "已经答复" in page and "确定放弃</button>" not in page


def test_a_change_request_from_the_child_page(app: Flask, client: FlaskClient) -> None:
    world = _world(app)
    sign_in(client, world["s1"])
    url = f"/family/child/{world['s1_pupil']}"
    page = client.get(url).get_data(as_text=True)
    assert 'name="change-effective_on"' in page and date.today().isoformat() in page
    change = f"/family/child/{world['s1_pupil']}/change"
    base = {"change-days": ["2"], "change-pickup_time": "16:30"}
    past = post_form(client, change, {**base, "change-effective_on": (date.today() - timedelta(days=1)).isoformat()},
                     token_from=url)
    assert past.status_code == 422
    late = post_form(client, change, {**base, "change-effective_on": (date.today() + timedelta(days=90)).isoformat()},
                     token_from=url)
    assert late.status_code == 422
    with app.app_context():
        assert _count(ChangeRequest) == 0
    assert client.post(change, data={**base, "change-effective_on": date.today().isoformat()}).status_code == 400
    stranger = app.test_client()
    sign_in(stranger, world["stranger"])
    assert post_form(stranger, change, {**base, "change-effective_on": date.today().isoformat()},
                     token_from="/family/").status_code == 404
    ok = post_form(client, change, {**base, "change-effective_on": date.today().isoformat()}, token_from=url)
    assert ok.status_code == 302, ok.get_data(as_text=True)[:2000]
    with app.app_context():
        row = db.session.scalar(select(ChangeRequest))
        assert row is not None and row.state == "applied" and row.days == [2]
