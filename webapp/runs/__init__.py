"""Allocation runs for school admins: start, watch, cancel, compare, pin and publish."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("runs", __name__, url_prefix="/admin/runs")

from webapp.runs import routes  # noqa: E402,F401  (registers the views on bp)
