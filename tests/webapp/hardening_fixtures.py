"""Two families and two schools for the API, access-matrix and fuzzing tests.

`two_families(app)` builds: school X (KM-TEST-0001, district 五华区) with parent A linked to P001 and parent B
linked to P002; school Y (KM-TEST-0002, district 盘龙区) with parent C linked to its P001; an admin of each
school; a district bureau user for 五华区 and a city-wide one. P001 of X has a published result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tests.conftest import TEST_PASSWORD, create_user, csrf_token, make_school
from webapp.extensions import db
from webapp.models import District, Pupil, School, Term

PHONES = {"parent_a": "13800000001", "parent_b": "13800000002", "parent_c": "13800000003"}


@dataclass
class World:
    ids: dict[str, int] = field(default_factory=dict)
    logins: dict[str, str] = field(default_factory=dict)


def _pupil(school: School, number: str) -> Pupil:
    pupil = db.session.scalar(select(Pupil).where(Pupil.school_id == school.id, Pupil.number == number))
    assert pupil is not None
    return pupil


def two_families(app: Flask, *, publish: bool = True) -> World:
    world = World()
    with app.app_context():
        x = make_school("KM-TEST-0001", district_name="五华区")
        y = make_school("KM-TEST-0002", district_name="盘龙区")
        wuhua = db.session.scalar(select(District).where(District.name == "五华区"))
        users = {
            "parent_a": create_user("parent", login=PHONES["parent_a"], pupil=_pupil(x, "P001")),
            "parent_b": create_user("parent", login=PHONES["parent_b"], pupil=_pupil(x, "P002")),
            "parent_c": create_user("parent", login=PHONES["parent_c"], pupil=_pupil(y, "P001")),
            "admin_x": create_user("school_admin", login="admin-x", school=x),
            "admin_y": create_user("school_admin", login="admin-y", school=y),
            "bureau": create_user("bureau", login="bureau-wuhua", district=wuhua),
            "bureau_city": create_user("bureau", login="bureau-city"),
        }
        for name, user in users.items():
            world.ids[name] = user.id
            world.logins[name] = user.phone or user.username or ""
        world.ids.update({
            "school_x": x.id, "school_y": y.id,
            "pupil_a": _pupil(x, "P001").id, "pupil_b": _pupil(x, "P002").id, "pupil_c": _pupil(y, "P001").id,
            "term_x": _term(x).id, "term_y": _term(y).id,
        })
        if publish:
            from tests.webapp.parents_fixtures import publish_for

            world.ids["run_x"] = publish_for(world.ids["pupil_a"])
    return world


def _term(school: School) -> Term:
    term = db.session.scalar(select(Term).where(Term.school_id == school.id))
    assert term is not None
    return term


def web_login(client: FlaskClient, login: str, password: str = TEST_PASSWORD) -> None:
    token = csrf_token(client, "/login")
    response = client.post("/login", data={"login": login, "password": password, "csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def api_token(client: FlaskClient, phone: str, password: str = TEST_PASSWORD) -> str:
    response = client.post("/api/v1/tokens", json={"phone": phone, "password": password})
    assert response.status_code == 201, response.get_data(as_text=True)
    token: Any = response.get_json()["token"]
    return str(token)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
