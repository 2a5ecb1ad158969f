"""A school admin tags pupils with the city's priority groups: scope, CSRF, audit, expiry review, import."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, select

from tests.conftest import make_school
from tests.webapp.admin.test_import import PUPIL_HEADER, messages, run, xlsx
from tests.webapp.factories import post_form
from webapp.extensions import db
from webapp.models import AuditLog, PriorityGroup, PriorityTag, Pupil, School, User

NOW = datetime(2026, 10, 15, 2, 0)  # 10:00 on 15 October in Kunming


@pytest.fixture
def groups(app: Flask) -> dict[str, int]:
    app.config["NOW"] = NOW
    with app.app_context():
        rows = [PriorityGroup(name_zh="特殊教育需要", name_en="Special educational needs", weight=8),
                PriorityGroup(name_zh="双职工", name_en="Both parents working", weight=2),
                PriorityGroup(name_zh="停用组", name_en="Retired group", weight=5, active=False)]
        db.session.add_all(rows)
        db.session.commit()
        return {row.name_en: row.id for row in rows}


def _pupil(app: Flask, number: str = "P001", code: str = "KM-TEST-0001") -> int:
    with app.app_context():
        found = db.session.scalar(select(Pupil.id).join(School).where(Pupil.number == number, School.code == code))
        assert found is not None
        return int(found)


def _tags(app: Flask, pupil_id: int) -> list[tuple[str, str, date]]:
    with app.app_context():
        return [(t.group.name_en, t.note, t.expires_on) for t in db.session.scalars(
            select(PriorityTag).where(PriorityTag.pupil_id == pupil_id).order_by(PriorityTag.id))]


def _tag_form(group_id: int, note: str = "残疾人证 No. 5301, seen 3 Sept", expires: str = "2027-01-31"
              ) -> dict[str, str]:
    return {"tag-group": str(group_id), "tag-note": note, "tag-expires_on": expires}


def test_admin_tags_and_untags_a_pupil(app: Flask, client: FlaskClient, signed_in: Callable[..., User],
                                       groups: dict[str, int]) -> None:
    signed_in("school_admin")
    pupil = _pupil(app)
    url = f"/admin/pupils/{pupil}"
    page = client.get(url).get_data(as_text=True)
    assert "优先群体" in page and "特殊教育需要 (8)" in page and "停用组" not in page
    assert "分配中的权重" in page
    response = post_form(client, f"{url}/tags", _tag_form(groups["Special educational needs"]), token_from=url)
    assert response.status_code == 302 and response.location.endswith(f"{url}#priority-groups")
    assert _tags(app, pupil) == [("Special educational needs", "残疾人证 No. 5301, seen 3 Sept", date(2027, 1, 31))]
    page = client.get(url).get_data(as_text=True)
    assert "残疾人证 No. 5301" in page and "<strong>8</strong>" in page
    # tagging again with the same group renews the tag rather than adding a second one
    post_form(client, f"{url}/tags", _tag_form(groups["Special educational needs"], "复核", "2027-06-30"),
              token_from=url)
    assert _tags(app, pupil) == [("Special educational needs", "复核", date(2027, 6, 30))]
    with app.app_context():
        tag_id = db.session.scalars(select(PriorityTag.id)).one()
    response = post_form(client, f"{url}/tags/{tag_id}/delete", token_from=url)
    assert response.status_code == 302 and _tags(app, pupil) == []
    with app.app_context():
        actions = [(row.action, row.target, (row.detail or {}).get("renewed")) for row in db.session.scalars(
            select(AuditLog).where(AuditLog.action.like("group.%tag")).order_by(AuditLog.id))]
    assert actions == [("group.tag", f"pupil:{pupil}", False), ("group.tag", f"pupil:{pupil}", True),
                       ("group.untag", f"pupil:{pupil}", None)]


@pytest.mark.parametrize(("form", "error"), [
    ({"tag-note": ""}, "请写明所查看的证明"),
    ({"tag-expires_on": "2026-10-14"}, "有效期已过"),
    ({"tag-expires_on": "not a date"}, "flash flash-error"),
    ({"tag-expires_on": ""}, "请输入日期"),
    ({"tag-group": "RETIRED"}, "flash flash-error"),  # a group out of use is not a choice
    ({"tag-group": "999"}, "flash flash-error"),
])
def test_bad_tags_are_refused_with_a_message(app: Flask, client: FlaskClient, signed_in: Callable[..., User],
                                             groups: dict[str, int], form: dict[str, str], error: str) -> None:
    signed_in("school_admin")
    pupil = _pupil(app)
    url = f"/admin/pupils/{pupil}"
    data = _tag_form(groups["Both parents working"])
    data.update(form)
    if data["tag-group"] == "RETIRED":
        data["tag-group"] = str(groups["Retired group"])
    response = post_form(client, f"{url}/tags", data, token_from=url, follow_redirects=True)
    assert response.status_code == 200
    assert _tags(app, pupil) == []
    assert error in response.get_data(as_text=True)


def test_a_school_admin_cannot_tag_another_schools_pupil(app: Flask, client: FlaskClient,
                                                         signed_in: Callable[..., User],
                                                         groups: dict[str, int]) -> None:
    signed_in("school_admin")
    with app.app_context():
        make_school("KM-TEST-0002")
        other = db.session.scalar(select(Pupil.id).join(School).where(School.code == "KM-TEST-0002"))
        db.session.add(PriorityTag(pupil_id=other, group_id=groups["Both parents working"], note="x",
                                   expires_on=date(2027, 1, 31)))
        db.session.commit()
        tag_id = db.session.scalars(select(PriorityTag.id)).one()
    own = f"/admin/pupils/{_pupil(app)}"
    assert client.get(f"/admin/pupils/{other}").status_code == 404
    assert post_form(client, f"/admin/pupils/{other}/tags", _tag_form(groups["Both parents working"]),
                     token_from=own).status_code == 404
    assert post_form(client, f"/admin/pupils/{other}/tags/{tag_id}/delete", token_from=own).status_code == 404
    # nor remove another school's tag through one of their own pupils
    assert post_form(client, f"{own}/tags/{tag_id}/delete", token_from=own).status_code == 404
    assert len(_tags(app, int(other))) == 1


def test_tag_routes_need_csrf_and_the_admin_role(app: Flask, client: FlaskClient, signed_in: Callable[..., User],
                                                 groups: dict[str, int]) -> None:
    signed_in("school_admin")
    pupil = _pupil(app)
    assert client.post(f"/admin/pupils/{pupil}/tags", data=_tag_form(groups["Both parents working"])
                       ).status_code == 400
    assert _tags(app, pupil) == []
    other = app.test_client()
    assert other.get("/admin/priority-review").status_code == 302  # to the login page


def test_expired_and_expiring_tags_are_listed_for_review(app: Flask, client: FlaskClient,
                                                         signed_in: Callable[..., User],
                                                         groups: dict[str, int]) -> None:
    signed_in("school_admin")
    with app.app_context():
        numbers = {"P001": date(2026, 10, 14), "P002": date(2026, 10, 15), "P003": date(2026, 11, 14),
                   "P004": date(2026, 11, 15)}
        for number, expires_on in numbers.items():
            pupil = db.session.scalar(select(Pupil).where(Pupil.number == number))
            assert pupil is not None
            pupil.name = f"孩子{number}"
            db.session.add(PriorityTag(pupil_id=pupil.id, group_id=groups["Both parents working"],
                                       note=f"证明{number}", expires_on=expires_on))
        db.session.commit()
    page = client.get("/admin/priority-review").get_data(as_text=True)
    expired, expiring = page.split("30 天内到期")
    assert "孩子P001" in expired and "孩子P002" not in expired
    assert "孩子P002" in expiring and "孩子P003" in expiring and "孩子P004" not in page
    app.config["NOW"] = datetime(2026, 10, 16, 2, 0)  # a day later P002's tag has ended too
    expired, _ = client.get("/admin/priority-review").get_data(as_text=True).split("30 天内到期")
    assert "孩子P001" in expired and "孩子P002" in expired


# ------------------------------------------------------------------------------------------ import


@pytest.fixture
def school(app: Flask, groups: dict[str, int]) -> Iterator[School]:
    with app.test_request_context("/admin/import/pupils"):
        yield make_school()


HEADER = [*PUPIL_HEADER, "优先群体", "群体证明", "群体有效期至"]


def test_import_tags_pupils_by_group_name(school: School) -> None:
    rows = [HEADER, ["1", "张三", 3, "", "", None, "特殊教育需要", "残疾人证", "2027-01-31"],
            ["2", "李四", 3, "", "", 1, "both parents working", "单位证明", date(2026, 12, 31)],
            ["3", "王五", 3, "", "", None, None, None, None]]
    result = run("pupils", xlsx(rows), school)
    assert result.ok, messages(result)
    tags = {(t.pupil.number, t.group.name_zh, t.note, t.expires_on) for t in db.session.scalars(select(PriorityTag))}
    assert tags == {("1", "特殊教育需要", "残疾人证", date(2027, 1, 31)),
                    ("2", "双职工", "单位证明", date(2026, 12, 31))}
    li = db.session.scalar(select(Pupil).where(Pupil.number == "2"))
    assert li is not None and li.priority == 1  # the old column still works beside the group
    assert run("pupils", xlsx(rows), school).ok  # importing twice renews, never duplicates
    assert len(db.session.scalars(select(PriorityTag)).all()) == 2


def test_import_refuses_unknown_groups_with_row_and_column(school: School) -> None:
    rows = [HEADER, ["1", "张三", 3, "", "", None, "留守儿童", "证明", "2027-01-31"],
            ["2", "李四", 3, "", "", None, "停用组", "证明", "2027-01-31"],
            ["3", "王五", 3, "", "", None, "双职工", "", "2026-10-01"],
            ["4", "赵六", 3, "", "", None, None, "证明", None]]
    result = run("pupils", xlsx(rows), school)
    assert messages(result) == [
        "第 2 行，「优先群体」列：「留守儿童」不是本市的优先群体（现有：双职工、特殊教育需要）。",
        "第 3 行，「优先群体」列：「停用组」不是本市的优先群体（现有：双职工、特殊教育需要）。",
        "第 4 行，「群体证明」列：请在「群体证明」中写明所查看的证明。",
        "第 4 行，「群体有效期至」列：群体有效期至已过期。",
        "第 5 行，「优先群体」列：填写了证明或有效期时，优先群体不能为空。",
    ]
    assert db.session.scalars(select(PriorityTag)).all() == []
    assert db.session.scalars(select(Pupil).where(Pupil.number == "1")).all() == []


def _pupils_page_statements(app: Flask, client: FlaskClient) -> tuple[str, int]:
    with app.app_context():
        engine = db.engine
    count = 0

    def counted(*_args: object) -> None:
        nonlocal count
        count += 1

    event.listen(engine, "before_cursor_execute", counted)
    try:
        response = client.get("/admin/pupils")
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    assert response.status_code == 200
    return response.get_data(as_text=True), count


def test_pupils_list_names_each_pupils_groups_and_marks_expired_tags(
        app: Flask, client: FlaskClient, signed_in: Callable[..., User], groups: dict[str, int]) -> None:
    signed_in("school_admin")
    _page, untagged = _pupils_page_statements(app, client)
    with app.app_context():
        db.session.add_all([
            PriorityTag(pupil_id=_pupil(app, "P001"), group_id=groups["Special educational needs"],
                        expires_on=date(2027, 1, 31)),
            PriorityTag(pupil_id=_pupil(app, "P001"), group_id=groups["Both parents working"],
                        expires_on=date(2026, 10, 14)),  # ended yesterday
            PriorityTag(pupil_id=_pupil(app, "P002"), group_id=groups["Both parents working"],
                        expires_on=date(2026, 10, 15)),  # its last day
            PriorityTag(pupil_id=_pupil(app, "P003"), group_id=groups["Retired group"],
                        expires_on=date(2027, 1, 31)),
        ])
        db.session.commit()
    page, tagged = _pupils_page_statements(app, client)
    assert tagged == untagged, "the groups of every pupil on the page come from one query"
    rows = {number: row for row in page.split("<tr") for number in ("P001", "P002", "P003", "P004")
            if f">{number}</a>" in row}
    heaviest_first = '<span class="badge">特殊教育需要</span> <span class="badge badge-warn">双职工 · 已过期</span>'
    assert heaviest_first in rows["P001"]
    assert '<span class="badge">双职工</span>' in rows["P002"]
    assert "停用组" not in page and "<td>—</td>" in rows["P003"] and "<td>—</td>" in rows["P004"]
    assert "优先群体" in page

    post_form(client, "/lang/en", {"next": "/admin/pupils"}, token_from="/admin/pupils")
    english = client.get("/admin/pupils").get_data(as_text=True)
    assert "Special educational needs" in english and "Both parents working · expired" in english
    assert "Priority groups" in english
