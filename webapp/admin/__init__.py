"""The school admin's data side: dashboard, spreadsheet import, edit screens, request window and codes."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("admin", __name__, url_prefix="/admin")

from webapp.admin import routes  # noqa: E402,F401  (registers the views on bp)
