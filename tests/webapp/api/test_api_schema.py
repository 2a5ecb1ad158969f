"""Schemathesis on the WSGI app: no server errors, responses match the OpenAPI document, bad input refused.

Every operation is driven with schema-conforming (positive) and schema-violating (negative) data, 50 examples
each, derandomized. Half the generated cases address the signed-in parent's own child (or own message) so the
real code paths (validation, window, save, withdraw, mark read) run, not only the 404 of a stranger's id.

`positive_data_acceptance` is left out: a schema-valid request can still name a pickup time or activity the
school does not offer, and 422 is the right answer for it.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.webapp.factories import PHONES, api_token, bearer, two_families
from webapp.extensions import db
from webapp.models import NotificationEvent
from webapp.notifications import notify

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.generation.modes import GenerationMode  # noqa: E402
from schemathesis.specs.openapi.checks import positive_data_acceptance  # noqa: E402

MAX_EXAMPLES = 50


def _operations(app: Flask) -> list[Any]:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def _drive(app: Flask, operation: Any, mode: GenerationMode, token: str, own: dict[str, int],
           seen: dict[str, set[int]]) -> None:
    label = f"{operation.method.upper()} {operation.path}"
    excluded = [positive_data_acceptance]

    @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), use_own=st.booleans(),
           pickup=st.sampled_from([None, "16:30", "17:30", "18:30"]))
    def check(case: Any, use_own: bool, pickup: str | None) -> None:
        if use_own and mode == GenerationMode.POSITIVE and "notification_id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "notification_id": own["notification_id"]}
        if use_own and mode == GenerationMode.POSITIVE and "pupil_id" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "pupil_id": own["pupil_id"]}
            if pickup and isinstance(case.body, dict) and "pickup_time" in case.body:
                # a time the school offers, so valid requests get stored, not only refused
                offered = {"homework", "football", "art", "care"}
                prefs = [p for p in case.body.get("preferences", []) if p in offered]
                case.body = {**case.body, "pickup_time": pickup, "preferences": prefs}
        headers = bearer(token)
        if operation.path == "/tokens/current":  # revoke a token of its own, keep the shared one alive
            headers = bearer(api_token(app.test_client(), PHONES["parent_a"]))
        response = case.call(headers=headers)
        assert response.status_code < 500, f"{label}: {response.status_code} {response.text[:300]}"
        assert "<html" not in response.text.lower()
        case.validate_response(response, headers=headers, excluded_checks=excluded)
        seen.setdefault(label, set()).add(response.status_code)

    check()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(app: Flask, mode: GenerationMode) -> None:
    world = two_families(app)
    with app.app_context():
        message = notify(NotificationEvent.PLAN_AMENDED, pupil_id=world.ids["pupil_a"], params={"version": 2})[0]
        notify(NotificationEvent.OFFER_MADE, pupil_id=world.ids["pupil_b"])
        db.session.commit()
        own = {"pupil_id": world.ids["pupil_a"], "notification_id": message.id}
    token = api_token(app.test_client(), PHONES["parent_a"])
    operations = _operations(app)
    assert len(operations) == 25
    seen: dict[str, set[int]] = {}
    for operation in operations:
        _drive(app, operation, mode, token, own, seen)
    if mode == GenerationMode.POSITIVE:
        # the happy paths were reached, not only refusals
        assert 200 in seen["GET /children/{pupil_id}/request"]
        assert seen["PUT /children/{pupil_id}/request"] & {200, 201}
        assert 200 in seen["GET /children/{pupil_id}/result"]
        assert 204 in seen["DELETE /tokens/current"]
        assert 200 in seen["GET /notifications"]
        assert {200, 404} <= seen["POST /notifications/{notification_id}/read"]
        assert 200 in seen["GET /children/{pupil_id}/attendance"]
        assert 200 in seen["GET /children/{pupil_id}/pickup-persons"]
        assert seen["POST /children/{pupil_id}/absences"] & {409, 422}  # no calendar here: no service on any date
        assert 200 in seen["GET /children/{pupil_id}/notice"]
    else:
        assert seen["PUT /children/{pupil_id}/request"] & {400, 415, 422}
