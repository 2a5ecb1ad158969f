"""The school admin's data side: dashboard, spreadsheet import, edit screens, request window and codes."""

from __future__ import annotations

from webapp.admin import (
    edit,  # noqa: F401  (registers the edit screens on bp)
    placement,  # noqa: F401  (registers the pupil page and manual placement on bp)
    tags,  # noqa: F401  (registers the priority-group tags on bp)
)
from webapp.admin.routes import bp

__all__ = ["bp"]
