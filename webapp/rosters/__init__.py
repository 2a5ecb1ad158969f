"""Rosters and the waitlist: attendance sheets, dismissal lists, duty timetables, exports, seat promotion."""

from __future__ import annotations

from webapp.rosters.routes import bp

__all__ = ["bp"]
