"""What every `/api/v1` route shares: the blueprint, bearer-token sign-in, JSON errors and input helpers.

The API's route modules (`webapp.api.routes`, `webapp.daily.api`) build on these, so a token, an unreadable
body, an unknown field or another family's child is answered the same way everywhere: `{"error": code,
"message": sentence, "fields": {path: sentence}}`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Blueprint, Response, g, request
from flask_babel import gettext as _
from flask_login import AnonymousUserMixin
from sqlalchemy import select

from webapp.accounts import hash_token
from webapp.extensions import csrf, db
from webapp.hardening import json_error
from webapp.inputs import MAX_JSON_BYTES
from webapp.models import ApiToken, Pupil, User, utcnow
from webapp.parents import service

bp = Blueprint("api", __name__, url_prefix="/api/v1")
csrf.exempt(bp)

F = TypeVar("F", bound=Callable[..., Any])

LAST_USED_EVERY = timedelta(minutes=10)


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or {}


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    return json_error(error.status, error.code, error.message, error.fields)


def iso(value: datetime | None) -> str | None:
    """Naive UTC as RFC 3339 with a Z."""
    return value.replace(microsecond=0).isoformat() + "Z" if value is not None else None


def user_for_token(token: str) -> tuple[User, ApiToken] | None:
    if not token or len(token) > 200:
        return None
    found = db.session.execute(
        select(ApiToken, User).join(User, User.id == ApiToken.user_id)
        .where(ApiToken.token_hash == hash_token(token))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked or row.expires_at <= utcnow() or not user.active or user.role != "parent":
        return None
    return user, row


@bp.before_request
def _authenticate() -> None:
    """The bearer token is the only credential here: a browser session cookie is ignored."""
    g._login_user = AnonymousUserMixin()
    g.api_user = None
    g.api_token = None
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return
    found = user_for_token(token.strip())
    if found is None:
        return
    user, row = found
    g.api_user, g.api_token, g._login_user = user, row, user
    if row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_EVERY:
        row.last_used_at = utcnow()
        db.session.commit()


def token_required(view: F) -> F:
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if g.get("api_user") is None:
            raise ApiError(401, "unauthorized", _("Sign in again: the token is missing, expired or revoked."))
        return view(*args, **kwargs)

    return cast(F, wrapped)


def json_object() -> dict[str, Any]:
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", _("Send the request body as JSON."))
    if (request.content_length or 0) > MAX_JSON_BYTES:
        raise ApiError(413, "too_large", _("The request body is larger than %(kb)d KB.", kb=MAX_JSON_BYTES // 1024))
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "bad_json", _("The request body is not valid JSON."))
    if not isinstance(data, dict):
        raise ApiError(422, "invalid", _("The request body must be a JSON object."))
    return data


def unknown_fields(data: dict[str, Any], allowed: set[str]) -> dict[str, str]:
    return {str(key)[:64]: _("Unknown field.") for key in data if key not in allowed}


def own_pupil(pupil_id: int) -> Pupil:
    try:
        return service.own_pupil(g.api_user, pupil_id)
    except service.NotYourChild:
        raise ApiError(404, "not_found", _("No such child on your account.")) from None
