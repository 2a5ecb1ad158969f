"""The city's priority groups: city-wide bureau users define them, district users only read, CSRF guards it."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.webapp.factories import post_form
from webapp.extensions import db
from webapp.models import AuditLog, District, PriorityGroup, User

GROUP = {"name_zh": "特殊教育需要", "name_en": "Special educational needs", "weight": "8", "active": "y"}


def _groups(app: Flask) -> list[tuple[str, str, int, bool]]:
    with app.app_context():
        return [(g.name_zh, g.name_en, g.weight, g.active)
                for g in db.session.scalars(select(PriorityGroup).order_by(PriorityGroup.id))]


def test_city_bureau_adds_and_edits_a_group(app: Flask, client: FlaskClient,
                                             signed_in: Callable[..., User]) -> None:
    signed_in("bureau")
    response = post_form(client, "/bureau/groups", GROUP)
    assert response.status_code == 302
    assert _groups(app) == [("特殊教育需要", "Special educational needs", 8, True)]
    page = client.get("/bureau/groups").get_data(as_text=True)
    assert "特殊教育需要" in page and "新增群体" in page
    with app.app_context():
        group_id = db.session.scalars(select(PriorityGroup.id)).one()
    response = post_form(client, f"/bureau/groups/{group_id}", {**GROUP, "weight": "6", "active": ""})
    assert response.status_code == 302
    assert _groups(app) == [("特殊教育需要", "Special educational needs", 6, False)]
    with app.app_context():
        details = [row.detail for row in db.session.scalars(
            select(AuditLog).where(AuditLog.action == "group.save").order_by(AuditLog.id))]
    assert details[0]["before"] is None and details[1]["before"]["weight"] == 8


def test_bad_group_input_is_a_form_error(app: Flask, client: FlaskClient,
                                         signed_in: Callable[..., User]) -> None:
    signed_in("bureau")
    post_form(client, "/bureau/groups", GROUP)
    duplicate = post_form(client, "/bureau/groups", {**GROUP, "name_en": "SEN"})
    assert duplicate.status_code == 400
    assert "已有名为 特殊教育需要 的群体" in duplicate.get_data(as_text=True)
    for weight in ("0", "101", "two"):
        response = post_form(client, "/bureau/groups", {**GROUP, "name_zh": "留守儿童", "name_en": "Left-behind",
                                                         "weight": weight})
        assert response.status_code == 400, weight
        assert 'class="error"' in response.get_data(as_text=True)
    assert len(_groups(app)) == 1


def test_district_bureau_reads_but_cannot_edit(app: Flask, client: FlaskClient,
                                               signed_in: Callable[..., User]) -> None:
    with app.app_context():
        db.session.add(PriorityGroup(name_zh="双职工", name_en="Both parents working", weight=2))
        district = District(name="西山区", city="昆明市")
        db.session.add(district)
        db.session.commit()
        district_id, group_id = district.id, db.session.scalars(select(PriorityGroup.id)).one()
    with app.app_context():
        signed_in("bureau", district=db.session.get(District, district_id))
    page = client.get("/bureau/groups").get_data(as_text=True)
    assert "双职工" in page and "只有市教育局可以修改群体列表" in page
    assert "<form method=\"post\" action=\"/bureau/groups\"" not in page
    assert post_form(client, "/bureau/groups", GROUP, token_from="/bureau/groups").status_code == 403
    assert client.get(f"/bureau/groups/{group_id}").status_code == 403
    assert post_form(client, f"/bureau/groups/{group_id}", GROUP, token_from="/bureau/groups").status_code == 403
    assert _groups(app) == [("双职工", "Both parents working", 2, True)]


def test_school_admins_and_parents_are_refused(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    assert client.get("/bureau/groups").status_code == 403


def test_a_post_without_csrf_token_changes_nothing(app: Flask, client: FlaskClient,
                                                   signed_in: Callable[..., User]) -> None:
    signed_in("bureau")
    assert client.post("/bureau/groups", data=GROUP).status_code == 400
    assert _groups(app) == []


def test_english_page(client: FlaskClient, signed_in: Callable[..., User]) -> None:
    signed_in("bureau")
    post_form(client, "/lang/en", {"next": "/bureau/groups"}, token_from="/bureau/groups")
    page = client.get("/bureau/groups").get_data(as_text=True)
    assert "Priority groups" in page and "Add a group" in page
