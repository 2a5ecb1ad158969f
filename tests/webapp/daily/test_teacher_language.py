"""A teacher record's message language (`Teacher.locale`, Chinese unless set): a class teacher's absence alerts
are worded in it; it is set on the teacher's form and in the teachers' import (optional column 消息语言); the
migration gives existing teachers Chinese, on SQLite and PostgreSQL.

P001 (学生1) is in grade 3, class 3-1; the duty teacher is 李老师 (T1); the class teacher here is 王老师 (T2).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import MetaData, inspect, select

from tests.webapp.daily.conftest import MONDAY, Daily
from tests.webapp.factories import empty_schema_app, post_form, xlsx
from webapp import create_app
from webapp.extensions import db
from webapp.models import ClassTeacher, Notification, NotificationEvent, Session, Teacher
from webapp.notifications.messages import render

Freeze = Callable[[date, str], None]


def _teacher(code: str) -> Teacher:
    found = db.session.scalar(select(Teacher).where(Teacher.code == code))
    assert found is not None
    return found


def _absent(client: FlaskClient, app: Flask, daily: Daily, client_id: str) -> None:
    with app.app_context():
        s11 = db.session.scalar(select(Session.id).where(Session.code == "S11"))
    response = post_form(client, f"/daily/duty/sessions/{s11}/mark",
                         {"pupil_id": daily.pupil_id, "session_id": s11, "client_id": client_id, "status": "absent",
                          "reason": ""}, token_from="/daily/duty")
    assert response.status_code in (200, 302)


def test_a_class_teachers_alert_is_worded_in_the_teachers_language(app: Flask, client: FlaskClient, daily: Daily,
                                                                   duty: int, at: Freeze) -> None:
    with app.app_context():
        wang = _teacher("T2")
        assert wang.locale == "zh"  # the default
        wang.phone, wang.locale = "13900000002", "en"
        db.session.add(ClassTeacher(school_id=daily.school.id, grade=3, class_name="3-1", teacher_id=wang.id))
        db.session.commit()
    at(MONDAY, "15:40")
    _absent(client, app, daily, "absent-en-1")
    with app.app_context():
        told = db.session.scalars(select(Notification).where(Notification.teacher_id.is_not(None))).one()
        assert told.event == NotificationEvent.CLASS_ABSENCE.value and told.deliveries
        message = render(told)  # as the delivery job words it
        assert message.locale == "en"
        assert message.title == "Absence nobody reported: 学生1"
        assert "was marked absent at after-school care" in message.body and "李老师" in message.body
        _teacher("T2").locale = "zh"
        db.session.commit()
        db.session.expire_all()
        chinese = render(db.session.get(Notification, told.id))
        assert chinese.locale == "zh" and "家长未请假" in chinese.body


def test_the_teacher_form_sets_the_language(app: Flask, client: FlaskClient,
                                            signed_in: Callable[..., Any]) -> None:
    admin = signed_in("school_admin")
    with app.app_context():
        url = f"/admin/teachers/{_teacher('T2').id}/edit"
    page = client.get(url).get_data(as_text=True)
    assert "消息语言" in page and '<option lang="zh-CN" selected value="zh">中文</option>' in page
    form = {"code": "T2", "name": "王老师", "qualifications": "arts", "max_sessions": 6, "active": "y"}
    assert post_form(client, url, {**form, "locale": "fr"}).status_code == 200  # not a language we send in
    with app.app_context():
        assert _teacher("T2").locale == "zh"
    assert post_form(client, url, {**form, "locale": "en"}).status_code == 302
    with app.app_context():
        assert _teacher("T2").locale == "en"
    assert '<option lang="en" selected value="en">English</option>' in client.get(url).get_data(as_text=True)
    assert admin.school_id is not None


def test_the_teachers_import_reads_the_optional_language_column(app: Flask, client: FlaskClient,
                                                                signed_in: Callable[..., Any]) -> None:
    signed_in("school_admin")

    def upload(rows: list[list[Any]]) -> Any:
        return post_form(client, "/admin/import/teachers", {"file": (io.BytesIO(xlsx(rows)), "teachers.xlsx")},
                         token_from="/admin/import/teachers")

    refused = upload([["工号", "姓名", "消息语言"], ["T1", "李老师", "English"], ["T2", "王老师", "法语"]])
    assert refused.status_code == 422
    assert "第 3 行，「消息语言」列：“法语”不是可用的消息语言：请填写中文或 English。" in refused.get_data(as_text=True)
    with app.app_context():
        assert _teacher("T1").locale == "zh"  # all or nothing
    assert upload([["工号", "姓名", "message language"], ["T1", "李老师", "English"], ["T2", "王老师", "en"],
                   ["T3", "赵老师", ""], ["T4", "孙老师", "英文"]]).status_code == 302
    with app.app_context():
        assert {code: _teacher(code).locale for code in ("T1", "T2", "T3", "T4")} == {
            "T1": "en", "T2": "en", "T3": "zh", "T4": "en"}
    assert upload([["工号", "姓名"], ["T1", "李老师"]]).status_code == 302  # without the column: kept
    with app.app_context():
        assert _teacher("T1").locale == "en"


def _migrate_keeps_teachers_chinese(app: Flask) -> None:
    """A teacher written at the revision before (no language) reads Chinese after the upgrade; down again, the
    column goes."""
    from flask_migrate import downgrade, upgrade

    from webapp.commands import MIGRATIONS_DIR

    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR, revision="a3c7e1f5b9d2")
        old = MetaData()
        old.reflect(db.engine, only=["schools", "teachers"])
        assert "locale" not in old.tables["teachers"].columns
        school_id = db.session.execute(old.tables["schools"].insert().values(
            code="KM-UPGRADE-02", name="升级小学", contact="")).inserted_primary_key[0]
        db.session.execute(old.tables["teachers"].insert().values(
            school_id=school_id, code="T9", name="周老师", qualifications=[], max_sessions=5, active=True))
        db.session.commit()
        upgrade(directory=MIGRATIONS_DIR)
        db.session.expire_all()
        assert _teacher("T9").locale == "zh"
        db.session.add(Teacher(school_id=school_id, code="T10", name="吴老师", qualifications=[]))
        db.session.commit()
        assert _teacher("T10").locale == "zh"
        db.session.remove()
        downgrade(directory=MIGRATIONS_DIR, revision="a3c7e1f5b9d2")
        assert "locale" not in {c["name"] for c in inspect(db.engine).get_columns("teachers")}
        db.session.remove()
        db.engine.dispose()


def test_the_migration_on_sqlite(tmp_path: Path) -> None:
    _migrate_keeps_teachers_chinese(create_app({"SECRET_KEY": "x",
                                                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'u.db'}"}))


def test_the_migration_on_postgresql(pg_app: Flask) -> None:
    with empty_schema_app(pg_app) as app:
        _migrate_keeps_teachers_chinese(app)
