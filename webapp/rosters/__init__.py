"""Rosters and the waitlist pages: attendance sheets, dismissal lists, duty timetables, exports."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("rosters", __name__, url_prefix="/admin/rosters")

from webapp.rosters import routes  # noqa: E402,F401  (registers the views on bp)
