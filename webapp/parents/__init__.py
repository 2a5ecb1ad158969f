"""The parents' area: linked children, care requests for the current term and published timetables."""

from __future__ import annotations

from webapp.parents.routes import bp

__all__ = ["bp"]
