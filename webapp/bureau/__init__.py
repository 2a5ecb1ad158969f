"""The education bureau: coverage dashboard, capacity advice, city-wide allocation batches and bench-city.

The blueprint's CLI commands (`allocate`, `bench-city`) sit at the top level of `flask --app webapp`.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("bureau", __name__, url_prefix="/bureau", cli_group=None)

from webapp.bureau import bench, city, routes  # noqa: E402,F401  (registers views and commands on bp)
