"""Notifications: outbox rows stored with the caller's transaction, worded in the family's language, and the
inbox, API and delivery log pages with their access rules."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.conftest import make_school
from tests.webapp.factories import PHONES, World, api_token, bearer, create_user, post_form, sign_in, two_families
from webapp.extensions import db
from webapp.models import (
    AuditLog,
    Notification,
    NotificationDelivery,
    NotificationEvent,
    Pupil,
    User,
)
from webapp.notifications import notify, render


def _count(model: type) -> int:
    return int(db.session.scalar(select(func.count()).select_from(model)) or 0)


def test_one_row_per_guardian_in_the_callers_transaction(app: Flask) -> None:
    with app.app_context():
        school = make_school()
        pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001"))
        assert pupil is not None
        mother = create_user("parent", login="13800138001", pupil=pupil)
        father = create_user("parent", login="13800138002", pupil=pupil)
        rows = notify(NotificationEvent.PLAN_AMENDED, pupil_id=pupil.id, params={"version": 2})
        assert sorted(row.user_id for row in rows) == sorted([mother.id, father.id])
        db.session.rollback()
        assert _count(Notification) == 0
        notify("offer_made", pupil_id=pupil.id)
        db.session.commit()
        assert _count(Notification) == 2


def test_deliveries_are_written_and_dropped_with_the_notification(tmp_path: object) -> None:
    from tests.conftest import _make_app

    app = _make_app(tmp_path, MAIL_SERVER="127.0.0.1", MAIL_FROM="noreply@school.example", SMS_PROVIDER="logging")
    with app.app_context():
        school = make_school()
        pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001"))
        assert pupil is not None
        with_mail = create_user("parent", login="13800138001", pupil=pupil)
        with_mail.email = "mum@example.com"
        create_user("parent", login="13800138002", pupil=pupil)
        db.session.commit()
        notify(NotificationEvent.RESULTS_PUBLISHED, pupil_id=pupil.id)
        db.session.flush()
        assert _count(NotificationDelivery) == 3
        db.session.rollback()  # the change being reported failed: no message, no delivery
        assert (_count(Notification), _count(NotificationDelivery)) == (0, 0)
        notify(NotificationEvent.RESULTS_PUBLISHED, pupil_id=pupil.id)
        db.session.commit()
        channels = db.session.execute(select(Notification.user_id, NotificationDelivery.channel)
                                      .join(NotificationDelivery).order_by(Notification.user_id,
                                                                           NotificationDelivery.channel)).all()
        assert [c for _, c in channels] == ["email", "sms", "sms"]
        first = db.session.scalar(select(NotificationDelivery))
        assert first is not None
        db.session.add(NotificationDelivery(notification_id=first.notification_id, channel=first.channel))
        with pytest.raises(IntegrityError):  # one delivery per (notification, channel)
            db.session.commit()
        db.session.rollback()
        db.session.remove()
        db.engine.dispose()


def test_messages_speak_the_familys_language_and_show_only_their_child(app: Flask) -> None:
    with app.app_context():
        school = make_school()
        pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == "P001"))
        assert pupil is not None
        parent = create_user("parent", login="13800138001", pupil=pupil)
        params = {"version": 3, "other_child": "学生2", "phone": "13900000000"}
        [row] = notify(NotificationEvent.PLAN_AMENDED, pupil_id=pupil.id, params=params)
        db.session.commit()
        chinese = render(row)
        assert chinese.locale == "zh" and chinese.title == "课表已调整"
        assert "学生1" in chinese.body and "第 3 版" in chinese.body
        parent.locale = "en"
        db.session.commit()
        english = render(row)
        assert english.title == "Timetable changed" and "version 3" in english.body
        for message in (chinese, english):
            assert "学生2" not in message.body + message.title and "13900000000" not in message.body
        [offer] = notify(NotificationEvent.OFFER_MADE, pupil_id=pupil.id,
                         params={"deadline": "2026-09-01T10:00:00"})
        db.session.commit()
        assert "18:00" in render(offer, "zh").body  # 10:00 UTC is 18:00 in Beijing
        for event in NotificationEvent:
            [any_row] = notify(event, pupil_id=pupil.id)
            db.session.commit()
            assert render(any_row, "zh").title and render(any_row, "en").body


def _messages_for(app: Flask, world: World) -> tuple[int, int]:
    with app.app_context():
        [mine] = notify(NotificationEvent.PLAN_AMENDED, pupil_id=world.ids["pupil_a"], params={"version": 2})
        [theirs] = notify(NotificationEvent.OFFER_EXPIRED, pupil_id=world.ids["pupil_b"])
        db.session.commit()
        return mine.id, theirs.id


def test_inbox_page_unread_count_and_marking_read(app: Flask, client: FlaskClient) -> None:
    world = two_families(app, publish=False)
    mine, theirs = _messages_for(app, world)
    sign_in(client, PHONES["parent_a"])
    page = client.get("/family/notifications").get_data(as_text=True)
    assert "课表已调整" in page and "学生1" in page
    assert "学生2" not in page  # another family's message is not here
    assert 'class="nav-count"' in page and ">1</span>" in page
    assert 'name="viewport"' in page
    home = client.get("/family/").get_data(as_text=True)
    assert 'class="nav-count"' in home  # the header count on every page
    assert client.post(f"/family/notifications/{mine}/read").status_code == 400  # no CSRF token
    assert post_form(client, f"/family/notifications/{theirs}/read",
                     token_from="/family/notifications").status_code == 404
    response = post_form(client, f"/family/notifications/{mine}/read", token_from="/family/notifications")
    assert response.status_code == 302
    assert 'class="nav-count"' not in client.get("/family/notifications").get_data(as_text=True)
    with app.app_context():
        notify(NotificationEvent.OFFER_MADE, pupil_id=world.ids["pupil_a"])
        notify(NotificationEvent.OFFER_EXPIRING, pupil_id=world.ids["pupil_a"])
        db.session.commit()
    post_form(client, "/family/notifications/read-all", token_from="/family/notifications")
    with app.app_context():
        unread = db.session.scalar(select(func.count()).select_from(Notification)
                                   .where(Notification.read_at.is_(None)))
        assert unread == 1  # only the other family's message is still unread


def test_english_inbox(app: Flask, client: FlaskClient) -> None:
    world = two_families(app, publish=False)
    _messages_for(app, world)
    sign_in(client, PHONES["parent_a"])
    post_form(client, "/lang/en", {"next": "/family/notifications"}, token_from="/family/notifications")
    page = client.get("/family/notifications").get_data(as_text=True)
    assert "Timetable changed" in page and "Mark all as read" in page


def test_only_parents_have_an_inbox(app: Flask, client: FlaskClient, signed_in: Callable[..., User]) -> None:
    assert client.get("/family/notifications").status_code == 302  # to the login page
    signed_in("bureau")
    assert client.get("/family/notifications").status_code == 403


def test_email_address_is_optional_and_validated(app: Flask, client: FlaskClient,
                                                 signed_in: Callable[..., User]) -> None:
    parent = signed_in("parent")
    assert "/family/notifications/email" in client.get("/account").get_data(as_text=True)
    bad = post_form(client, "/family/notifications/email", {"email": "not an address"})
    assert bad.status_code == 400 and "name@example.com" in bad.get_data(as_text=True)
    ok = post_form(client, "/family/notifications/email", {"email": " mum@example.com "})
    assert ok.status_code == 302
    with app.app_context():
        assert db.session.get(User, parent.id).email == "mum@example.com"  # type: ignore[union-attr]
        audit = db.session.scalar(select(AuditLog).where(AuditLog.action == "account.email_change"))
        assert audit is not None and "mum@example.com" not in str(audit.detail)
    post_form(client, "/family/notifications/email", {"email": ""})
    with app.app_context():
        assert db.session.get(User, parent.id).email is None  # type: ignore[union-attr]


def test_api_lists_own_notifications_newest_first_and_marks_read(app: Flask) -> None:
    world = two_families(app, publish=False)
    mine, theirs = _messages_for(app, world)
    with app.app_context():
        [newer] = notify(NotificationEvent.OFFER_MADE, pupil_id=world.ids["pupil_a"])
        db.session.commit()
        newer_id = newer.id
    client = app.test_client()
    headers = bearer(api_token(client, PHONES["parent_a"]))
    body = client.get("/api/v1/notifications?per_page=1", headers=headers).get_json()
    assert (body["total"], body["unread"], body["page"], body["per_page"]) == (2, 2, 1, 1)
    assert [n["id"] for n in body["notifications"]] == [newer_id]
    assert body["notifications"][0]["title"] == "有名额可以入选"
    second = client.get("/api/v1/notifications?page=2&per_page=1", headers=headers).get_json()
    assert [n["id"] for n in second["notifications"]] == [mine]
    read = client.post(f"/api/v1/notifications/{mine}/read", headers=headers)
    assert read.status_code == 200 and read.get_json()["read_at"]
    assert client.get("/api/v1/notifications", headers=headers).get_json()["unread"] == 1
    assert client.post(f"/api/v1/notifications/{theirs}/read", headers=headers).status_code == 404
    assert client.get("/api/v1/notifications?page=0", headers=headers).status_code == 422
    assert client.get("/api/v1/notifications").status_code == 401


def test_delivery_log_is_the_schools_own_and_closed_to_the_bureau(tmp_path: object) -> None:
    from tests.conftest import _make_app

    app = _make_app(tmp_path, SMS_PROVIDER="logging")
    client = app.test_client()
    world = two_families(app, publish=False)
    _messages_for(app, world)
    with app.app_context():
        notify(NotificationEvent.OFFER_MADE, pupil_id=world.ids["pupil_c"])  # school y
        db.session.commit()
    sign_in(client, world.logins["admin_x"])
    page = client.get("/admin/notifications")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "名额已过期" in text and "短信" in text and "138****0002" in text
    assert "学生1" in text and "名额递补" not in text  # school y's message is not listed
    assert "已公布" not in text and "请打开应用" not in text  # no message bodies
    assert "/admin/notifications" in client.get("/admin/").get_data(as_text=True)
    assert client.get("/admin/notifications?state=failed").status_code == 200
    for who in ("bureau", "bureau_city", "parent_a"):
        other = app.test_client()
        sign_in(other, world.logins[who])
        assert other.get("/admin/notifications").status_code == 403
    with app.app_context():
        delivery = db.session.scalar(select(NotificationDelivery).join(Notification)
                                     .where(Notification.pupil_id == world.ids["pupil_a"]))
        assert delivery is not None
        delivery.state, delivery.last_error, delivery.attempts = "failed", "interrupted", 1
        db.session.commit()
        url = f"/admin/notifications/deliveries/{delivery.id}/send-again"
    assert "发送时中断" in client.get("/admin/notifications").get_data(as_text=True)
    stranger = app.test_client()
    sign_in(stranger, world.logins["admin_y"])
    assert post_form(stranger, url, token_from="/admin/notifications").status_code == 404
    assert post_form(client, url, token_from="/admin/notifications").status_code == 302
    with app.app_context():
        again = db.session.get(NotificationDelivery, delivery.id)
        assert again is not None and (again.state, again.attempts) == ("pending", 0)
        assert db.session.scalar(select(AuditLog).where(AuditLog.action == "notification.send_again"))
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
