"""Sign-in, registration, sign-out and the language switch."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("auth", __name__)

from webapp.auth import routes  # noqa: E402,F401
