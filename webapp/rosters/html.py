"""Table rows of the big roster pages, built in Python rather than cell by cell in Jinja.

A 3,000-pupil school's dismissal lists have 15,000 day cells and its week of attendance sheets 20,000 rows;
the template loop, its per-cell translations and escapes were most of those pages' time. Every value is
escaped here with `markupsafe.escape`, exactly as Jinja's autoescape would, and each pupil's or session's
fragment is escaped once however often it appears.
"""

from __future__ import annotations

from collections.abc import Sequence

from flask_babel import gettext as _
from markupsafe import Markup, escape

from webapp.models import Pupil
from webapp.rosters.data import ClassList, SessionSheet

_TICK = Markup('<td class="tick"><span class="tick-box" aria-hidden="true"></span></td></tr>')


def attendance_rows(sheets: Sequence[SessionSheet]) -> dict[int, list[Markup]]:
    """Per session id, its pupils' rows (number, pupil number, name, class, an empty tick box)."""
    pupil_cells: dict[int, str] = {}
    rows: dict[int, list[Markup]] = {}
    for sheet in sheets:
        lines = []
        for index, pupil in enumerate(sheet.pupils, start=1):
            cells = pupil_cells.get(pupil.id)
            if cells is None:
                cells = pupil_cells[pupil.id] = _pupil_cells(pupil)
            lines.append(Markup(f"<tr><td>{index}</td>{cells}{_TICK}"))
        rows[sheet.session.id] = lines
    return rows


def _pupil_cells(pupil: Pupil) -> str:
    return f"<td>{escape(pupil.number)}</td><td>{escape(pupil.name)}</td><td>{escape(pupil.class_name)}</td>"


def dismissal_rows(class_list: ClassList, weekdays: Sequence[int]) -> list[Markup]:
    """The class's rows: pupil number, name, then per weekday where the pupil goes and when to collect them
    (or that a parent collects them at dismissal)."""
    home_label = _("Home / parent pickup")  # outside the f-string, where the message extractor sees it
    home = f'<td><span class="home">{escape(home_label)}</span></td>'
    pickup = str(escape(_("Pickup %(time)s", time="%(time)s")))
    stop_html: dict[int, str] = {}  # by session: one period, one activity, one room
    rows = []
    for row in class_list.rows:
        parts = [f"<tr><td>{escape(row.pupil.number)}</td><td>{escape(row.pupil.name)}</td>"]
        for day in weekdays:
            stops = row.stops(day)
            if not stops:
                parts.append(home)
                continue
            parts.append("<td>")
            for stop in stops:
                html = stop_html.get(stop.session.id)
                if html is None:
                    where = stop.session.room or stop.session.code
                    html = f"<div>{escape(stop.period.start)} {escape(stop.activity.name)} · {escape(where)}</div>"
                    stop_html[stop.session.id] = html
                parts.append(html)
            parts.append(f'<div class="pickup">{pickup % {"time": escape(row.pickup(day))}}</div></td>')
        parts.append("</tr>")
        rows.append(Markup("".join(parts)))
    return rows
