"""The education bureau: coverage dashboard, capacity advice and city-wide allocation batches.

Views live in `routes.py`; the batch command `flask --app webapp allocate` is `city.allocate_command`.
"""

from __future__ import annotations

from webapp.bureau import (
    calendars,  # noqa: F401  (registers the term-calendar pages on bp)
    groups,  # noqa: F401  (registers the priority-group pages on bp)
)
from webapp.bureau.routes import bp

__all__ = ["bp"]
