"""The parents' area: linked children, care requests for the current term and published timetables."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("parents", __name__, url_prefix="/family")

from webapp.parents import routes  # noqa: E402,F401
