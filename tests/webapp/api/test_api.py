"""The JSON API: tokens, children, requests, results; other families get 404; errors are JSON, never HTML."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from tests.conftest import TEST_PASSWORD, _make_app
from tests.webapp.factories import PHONES, World, api_token, bearer, post_form, sign_in, two_families
from webapp.accounts import hash_token
from webapp.api.openapi import openapi_document
from webapp.extensions import db
from webapp.hardening import CSP
from webapp.models import ApiToken, AuditLog, CareRequest, Term, User, utcnow

GOOD = {"days": [1, 2], "pickup_time": "17:30", "preferences": ["football", "art"]}


@pytest.fixture
def world(app: Flask) -> World:
    return two_families(app)


@pytest.fixture
def token_a(client: FlaskClient, world: World) -> str:
    return api_token(client, PHONES["parent_a"])


def _error(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json", response.get_data(as_text=True)[:200]
    body: dict[str, Any] = response.get_json()
    assert set(body) == {"error", "message", "fields"} and body["message"]
    if code:
        assert body["error"] == code, body
    return body


def _requests(app: Flask) -> list[tuple[int, int, str]]:
    with app.app_context():
        return sorted((r.term_id, r.pupil_id, r.status) for r in db.session.scalars(select(CareRequest)))


# ------------------------------------------------------------------------------------------ tokens


def test_token_issue_and_use(app: Flask, client: FlaskClient, world: World) -> None:
    response = client.post("/api/v1/tokens", json={"phone": "+86 138-0000-0001", "password": TEST_PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert body["token_type"] == "Bearer" and len(body["token"]) >= 40 and body["expires_at"].endswith("Z")
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
        assert row is not None and row.token_hash == hash_token(body["token"])
        assert body["token"] not in row.token_hash
        assert timedelta(days=29) < row.expires_at - row.created_at <= timedelta(days=30)
    me = client.get("/api/v1/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.get_json()["phone"] == PHONES["parent_a"]
    assert "Set-Cookie" not in me.headers


@pytest.mark.parametrize("login, password", [
    (PHONES["parent_a"], "wrong-password"), ("13911112222", TEST_PASSWORD), ("admin-x", TEST_PASSWORD),
    ("13800000009", "x"),
])
def test_token_refused_with_one_answer(client: FlaskClient, world: World, login: str, password: str) -> None:
    body = _error(client.post("/api/v1/tokens", json={"phone": login, "password": password}), 401,
                  "invalid_credentials")
    assert body["message"] == "手机号或密码错误。"


def test_token_refused_for_staff_and_disabled_parents(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        admin = db.session.get(User, world.ids["admin_x"])
        parent = db.session.get(User, world.ids["parent_b"])
        assert admin is not None and parent is not None
        admin.phone = "13900000000"
        parent.active = False
        db.session.commit()
    for phone in ("13900000000", PHONES["parent_b"]):
        _error(client.post("/api/v1/tokens", json={"phone": phone, "password": TEST_PASSWORD}), 401,
               "invalid_credentials")
    with app.app_context():
        failed = db.session.scalars(select(AuditLog).where(AuditLog.action == "auth.login_failed")).all()
        assert len(failed) == 2 and all("1390000" not in (f.target or "") for f in failed)


@pytest.mark.parametrize("kwargs, status, code", [
    ({"data": "phone=1&password=2", "content_type": "application/x-www-form-urlencoded"}, 415, None),
    ({"data": "{not json", "content_type": "application/json"}, 400, "bad_json"),
    ({"json": ["13800000001", "pw"]}, 422, "invalid"),
    ({"json": {"phone": 13800000001, "password": TEST_PASSWORD}}, 422, "invalid"),
    ({"json": {"phone": PHONES["parent_a"]}}, 422, "invalid"),
    ({"json": {"phone": PHONES["parent_a"], "password": TEST_PASSWORD, "admin": True}}, 422, "invalid"),
    ({"json": {"phone": "1" * 33, "password": "x" * 129}}, 422, "invalid"),
])
def test_token_bad_input(client: FlaskClient, world: World, kwargs: dict[str, Any], status: int,
                         code: str | None) -> None:
    body = _error(client.post("/api/v1/tokens", **kwargs), status, code)
    if status == 422 and isinstance(kwargs.get("json"), dict):
        assert body["fields"]


def test_missing_bad_expired_and_revoked_tokens(app: Flask, client: FlaskClient, token_a: str) -> None:
    response = client.get("/api/v1/children")
    _error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    _error(client.get("/api/v1/children", headers=bearer("not-a-token")), 401)
    _error(client.get("/api/v1/children", headers={"Authorization": f"Basic {token_a}"}), 401)
    assert client.get("/api/v1/children", headers=bearer(token_a)).status_code == 200
    with app.app_context():
        row = db.session.scalar(select(ApiToken))
        assert row is not None
        row.expires_at = utcnow() - timedelta(seconds=1)
        db.session.commit()
    _error(client.get("/api/v1/children", headers=bearer(token_a)), 401)

    fresh = api_token(client, PHONES["parent_a"])
    assert client.delete("/api/v1/tokens/current", headers=bearer(fresh)).status_code == 204
    _error(client.get("/api/v1/children", headers=bearer(fresh)), 401)


def test_password_change_and_disable_revoke_tokens(app: Flask, client: FlaskClient, world: World) -> None:
    token = api_token(client, PHONES["parent_a"])
    sign_in(client, PHONES["parent_a"])
    new = "another good passphrase"
    assert post_form(client, "/account/password",
                     {"current": TEST_PASSWORD, "password": new, "confirm": new}).status_code == 302
    _error(client.get("/api/v1/children", headers=bearer(token)), 401)
    token = api_token(app.test_client(), PHONES["parent_a"], new)
    assert app.test_cli_runner().invoke(args=["disable-user", PHONES["parent_a"]]).exit_code == 0
    _error(client.get("/api/v1/children", headers=bearer(token)), 401)


def test_browser_session_is_not_a_credential(client: FlaskClient, world: World) -> None:
    sign_in(client, PHONES["parent_a"])
    _error(client.get("/api/v1/children"), 401)
    assert client.put(f"/api/v1/children/{world.ids['pupil_a']}/request", json=GOOD).status_code == 401


# ------------------------------------------------------------------------------------------ children


def test_children_and_options(client: FlaskClient, world: World, token_a: str) -> None:
    listing = client.get("/api/v1/children", headers=bearer(token_a)).get_json()["children"]
    assert [c["id"] for c in listing] == [world.ids["pupil_a"]]
    child = listing[0]
    assert child["school"]["code"] == "KM-TEST-0001" and child["term"]["window"]["state"] == "open"
    assert child["request_status"] == "active"  # the published fixture made one
    url = f"/api/v1/children/{world.ids['pupil_a']}/options"
    options = client.get(url, headers=bearer(token_a)).get_json()
    assert options["days"] == [1, 2, 3, 4, 5] and options["max_preferences"] == 3
    times = {p["time"]: p for p in options["pickup_times"]}
    assert times["17:30"]["periods"] == ["P1", "P2"] and "football" in times["17:30"]["activities"]
    assert "football" not in times["16:30"]["activities"]


def test_request_lifecycle(app: Flask, client: FlaskClient, world: World) -> None:
    token = api_token(client, PHONES["parent_b"])
    url = f"/api/v1/children/{world.ids['pupil_b']}/request"
    _error(client.get(url, headers=bearer(token)), 404, "no_request")
    created = client.put(url, json=GOOD, headers=bearer(token))
    assert created.status_code == 201, created.get_data(as_text=True)
    body = created.get_json()
    assert body["days"] == [1, 2] and body["periods"] == ["P1", "P2"] and body["status"] == "active"
    assert client.get(url, headers=bearer(token)).get_json() == body
    updated = client.put(url, json={"days": [3, 1, 1], "pickup_time": "16:30"}, headers=bearer(token))
    assert updated.status_code == 200 and updated.get_json()["days"] == [1, 3]
    assert updated.get_json()["preferences"] == []
    withdrawn = client.delete(url, headers=bearer(token))
    assert withdrawn.status_code == 200 and withdrawn.get_json()["status"] == "withdrawn"
    _error(client.delete(url, headers=bearer(token)), 409, "conflict")
    resubmitted = client.put(url, json=GOOD, headers=bearer(token))
    assert resubmitted.status_code == 200 and resubmitted.get_json()["status"] == "active"
    with app.app_context():
        rows = db.session.scalars(select(CareRequest).where(CareRequest.pupil_id == world.ids["pupil_b"]))
        rows = list(rows)
        assert len(rows) == 1 and rows[0].submitted_by == world.ids["parent_b"]
        query = select(AuditLog.action).where(AuditLog.user_id == world.ids["parent_b"])
        actions = set(db.session.scalars(query))
        assert {"request.submit", "request.update", "request.withdraw"} <= actions


@pytest.mark.parametrize("payload, fields", [
    ({"days": [], "pickup_time": "17:30"}, {"days"}),
    ({"days": [9], "pickup_time": "17:30"}, {"days"}),
    ({"days": [1], "pickup_time": "99:99"}, {"pickup_time"}),
    ({"days": [1], "pickup_time": "16:30", "preferences": ["football"]}, {"preferences[0]"}),
    ({"days": [1], "pickup_time": "17:30", "preferences": ["art", "art"]}, {"preferences[1]"}),
    ({"days": [1], "pickup_time": "17:30", "preferences": ["a", "b", "c", "d"]}, {"preferences"}),
    ({"days": [True], "pickup_time": "17:30"}, {"days"}),
    ({"days": "1,2", "pickup_time": 1730}, {"days", "pickup_time"}),
    ({"days": [1], "pickup_time": "17:30", "preferences": [None]}, {"preferences"}),
    ({"days": [1], "pickup_time": "17:30", "status": "active"}, {"status"}),
    ({}, {"days", "pickup_time"}),
])
def test_request_validation(app: Flask, client: FlaskClient, world: World, token_a: str,
                            payload: dict[str, Any], fields: set[str]) -> None:
    before = _requests(app)
    body = _error(client.put(f"/api/v1/children/{world.ids['pupil_a']}/request", json=payload,
                             headers=bearer(token_a)), 422, "invalid")
    assert set(body["fields"]) == fields
    assert _requests(app) == before


def test_window_closed(app: Flask, client: FlaskClient, world: World, token_a: str) -> None:
    with app.app_context():
        term = db.session.get(Term, world.ids["term_x"])
        assert term is not None
        term.requests_close_at = utcnow() - timedelta(minutes=1)
        db.session.commit()
    before = _requests(app)
    body = _error(client.put(f"/api/v1/children/{world.ids['pupil_a']}/request", json=GOOD,
                             headers=bearer(token_a)), 409, "window_closed")
    assert "截止" in body["message"] or "closed" in body["message"] or "已" in body["message"]
    assert _requests(app) == before


def test_results(client: FlaskClient, world: World, token_a: str) -> None:
    result = client.get(f"/api/v1/children/{world.ids['pupil_a']}/result", headers=bearer(token_a)).get_json()
    assert [(s["day"], s["start"]) for s in result["timetable"]] == [(1, "15:30"), (1, "16:30")]
    assert result["uncovered"][0]["day"] == 2 and result["uncovered"][0]["waitlist_position"] == 2
    assert result["covered_days"] == [1] and result["requested_days"] == [1, 2]
    token_c = api_token(client, PHONES["parent_c"])
    _error(client.get(f"/api/v1/children/{world.ids['pupil_c']}/result", headers=bearer(token_c)), 404,
           "not_published")


@pytest.mark.parametrize("method, suffix", [
    ("GET", ""), ("GET", "/options"), ("GET", "/request"), ("PUT", "/request"), ("DELETE", "/request"),
    ("GET", "/result"),
])
def test_other_families_children_are_not_found(app: Flask, client: FlaskClient, world: World,
                                               token_a: str, method: str, suffix: str) -> None:
    with app.app_context():
        db.session.add(CareRequest(term_id=world.ids["term_x"], pupil_id=world.ids["pupil_b"], days=[1],
                                   pickup_time="16:30", periods=["P1"], preferences=[], status="active"))
        db.session.commit()
    before = _requests(app)
    for pupil in (world.ids["pupil_b"], world.ids["pupil_c"], 999999):
        response = client.open(f"/api/v1/children/{pupil}{suffix}", method=method, json=GOOD,
                                headers=bearer(token_a))
        body = _error(response, 404, "not_found")
        assert "学生" not in response.get_data(as_text=True) and body["fields"] == {}
    assert _requests(app) == before


# ------------------------------------------------------------------------------------------ errors


def test_errors_are_json_never_html(app: Flask, client: FlaskClient, token_a: str) -> None:
    _error(client.get("/api/v1/nowhere"), 404)
    _error(client.get("/api/v1/children/abc", headers=bearer(token_a)), 404)
    _error(client.post("/api/v1/children", headers=bearer(token_a)), 405)
    response = client.patch("/api/v1/children/1/request", headers=bearer(token_a))
    _error(response, 405)
    assert "PUT" in response.headers["Allow"]
    app.config["MAX_CONTENT_LENGTH"] = 1000
    _error(client.post("/api/v1/tokens", data="x" * 5000, content_type="application/json"), 413)
    for response in (client.get("/api/v1/children", headers=bearer(token_a)), client.get("/api/v1/nowhere")):
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_server_error_is_json(app: Flask, client: FlaskClient, world: World, token_a: str,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail")

    monkeypatch.setattr("webapp.parents.service.find_request", broken)
    response = client.get(f"/api/v1/children/{world.ids['pupil_a']}/request", headers=bearer(token_a))
    body = _error(response, 500, "server_error")
    assert "internal detail" not in response.get_data(as_text=True) and "Traceback" not in body["message"]


def test_english_messages_for_english_users(app: Flask, client: FlaskClient, world: World) -> None:
    with app.app_context():
        user = db.session.get(User, world.ids["parent_a"])
        assert user is not None
        user.locale = "en"
        db.session.commit()
    token = api_token(client, PHONES["parent_a"])
    body = _error(client.put(f"/api/v1/children/{world.ids['pupil_a']}/request", json={"days": [1]},
                             headers=bearer(token)), 422)
    assert body["message"] == "Some fields are not valid." and "HH:MM" in body["fields"]["pickup_time"]


@pytest.fixture
def limited(tmp_path: Any) -> Iterator[Flask]:
    app = _make_app(tmp_path, RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    two_families(app, publish=False)
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def test_token_endpoint_is_throttled(limited: Flask) -> None:
    client = limited.test_client()
    phone = PHONES["parent_a"]
    for _ in range(10):
        _error(client.post("/api/v1/tokens", json={"phone": phone, "password": "bad-guess"}), 401)
    body = _error(client.post("/api/v1/tokens", json={"phone": phone, "password": TEST_PASSWORD}),
                  429, "too_many_requests")
    assert body["message"]
    other = limited.test_client()
    assert other.post("/api/v1/tokens", json={"phone": PHONES["parent_b"], "password": TEST_PASSWORD},
                      environ_base={"REMOTE_ADDR": "10.2.3.4"}).status_code == 201


# ------------------------------------------------------------------------------------------ OpenAPI


def test_openapi_document_matches_the_routes(app: Flask, client: FlaskClient) -> None:
    document = client.get("/api/v1/openapi.json").get_json()
    assert document == openapi_document() and document["openapi"].startswith("3.1")
    documented = {(method.upper(), path) for path, item in document["paths"].items()
                  for method in item if method != "parameters"}
    routed = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("api.") and rule.endpoint != "api.openapi":
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
            routed |= {(method, path) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")}
    assert documented == routed
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ApiToken)) == 0
