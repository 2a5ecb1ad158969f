"""The education bureau: coverage dashboard, capacity advice and city-wide allocation batches.

The blueprint's CLI command `allocate` sits at the top level of `flask --app webapp`.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bureau", __name__, url_prefix="/bureau", cli_group=None)

from webapp.bureau import city, routes  # noqa: E402,F401  (registers views and commands on bp)
