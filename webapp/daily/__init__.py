"""The daily service: term calendar, the roster for a date, absences, pickup persons, roll-call, handovers.

Its pages are the `daily` blueprint (`webapp.daily.routes`); its JSON routes join the parents' API blueprint
(`webapp.daily.api`), imported here so that they exist whenever the app does.
"""

from __future__ import annotations

from webapp.daily import api  # noqa: F401  (registers the daily routes on the API blueprint)
from webapp.daily.routes import bp

__all__ = ["bp"]
