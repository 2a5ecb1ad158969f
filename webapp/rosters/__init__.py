"""Rosters and the waitlist pages: attendance sheets, dismissal lists, duty timetables, exports."""

from __future__ import annotations

from webapp.rosters.routes import bp

__all__ = ["bp"]
