"""The daily service: term calendar, the roster for a date, absences, pickup persons, roll-call, handovers."""
