"""The daily service: term calendar, the roster for a date, absences, pickup persons, roll-call, handovers,
and the service notice (告家长书) families sign before requesting care.

Its pages are the `daily` blueprint (`webapp.daily.routes`); its JSON routes join the parents' API blueprint
(`webapp.daily.api`). The app factory (`webapp/__init__.py`) imports both, so this package imports nothing:
the parents' request service can then use `webapp.daily.notice` whichever module loads first.
"""
