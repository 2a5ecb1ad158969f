"""Coverage figures for the education bureau, computed with a handful of aggregate queries.

Every figure is an aggregate: counts of pupils and pupil-days, never a pupil row. One call of `city_stats`
issues three queries whatever the number of schools: each run's figures are counted once, when its rows change,
and stored with it (`webapp.run_summary`); Python only sums them.

Source of each term's figures (`Source`): its published run, else its latest finished draft run (flagged as draft),
else none: the term is *not yet allocated*. The request-side figures are those the run was counted against; a term
without a run shows its live requests, and no seat-side figure at all (its rates are None, never 0 %).
A school's *current* term is its newest term (highest id); older terms feed the trend.

Roll-ups (district, city, a term of the trend) keep the three sources apart (`Rollup`): the headline figures are
those of the published allocations; draft allocations are summed separately and always labelled as drafts; schools
not yet allocated are counted, with their requests, but never enter a rate. See docs/bureau.md.

Definitions (per term):
- offers service: the term has at least one session;
- enrolled: active pupils of the school; requesting: active requests with at least one day and one period;
- requested pupil-days: the sum of requested days; unmet: requested pupil-days left unserved by the run;
- covered pupil-days: requested minus unmet; served: requesting pupils covered on at least one day;
- participation rate: served / enrolled; coverage: covered / requested pupil-days (both only for allocated terms);
- slots: per weekday x period, pupils who asked for it and pupils seated in it;
- teachers: teachers staffing at least one session, their mean and largest number of sessions a week;
- fairness (`Fairness`, from the run's stored summary): requesting pupils served on every / some / no requested day,
  the shares of placements in the first, a top-3 and no listed choice (weighted by each school's placements),
  justified envy, empty seats while pupils wait and families split on a day; summed over the schools whose run
  has them (`Fairness.schools`), never over a school whose run was counted before fairness was stored;
- served by priority group (`Fairness.by_group`, `served_by_group`): the same three counts for the pupils of each
  of the city's priority groups and for those of none, by the group each pupil counted under when the run was
  made; summed over the schools whose run recorded groups (`Fairness.group_schools`). Group names are looked up
  when shown, in the reader's language.

What leaves the app is never these figures as they are: every count of children (pupils, pupil-days, families)
goes through the one rule `suppress_counts` — small counts, those that would tell them, and the rates and shares
computed from them hidden — by the wrappers beside it: `shown_area`, `shown_page` (an area as the table of the
reader's whole scope shows it), `shown_groups`, `shown_by_level`, `shown_slot` (docs/bureau.md "Small counts are
hidden").
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import ColumnElement, func, select, true

from webapp import run_summary
from webapp.extensions import db
from webapp.models import (
    AllocationRun,
    CapacityAdvice,
    District,
    PriorityGroup,
    Pupil,
    RunState,
    School,
    Session,
    Term,
)
from webapp.priority_groups import group_name
from webapp.run_metrics import NO_GROUP

Slot = tuple[int, str]
MIN_CELL = 5
"""Default of `BUREAU_MIN_CELL`: counts of 1 to 4 pupils of a priority group are shown as "<5"."""
MIN_CELL_FLOOR = 5
"""Below this, "<N" on a row of three small counts would tell their values (1 + 1 + 1 = 3 under "<4")."""


class Source(StrEnum):
    """Where a term's figures come from."""

    PUBLISHED = "published"
    DRAFT = "draft"
    """The latest finished run, not published: the school may still change it."""
    NOT_ALLOCATED = "none"
    """No finished run yet: only the requests are known."""


@dataclass
class Fairness:
    """Summable fairness figures of one allocated term, or of several of one source (counts only, no name)."""

    schools: int = 0
    """Schools whose run has fairness figures: the others are not in these sums."""
    fully: int = 0
    partly: int = 0
    not_at_all: int = 0
    placed: int = 0
    """Placements of pupils who ranked activities: the base of the choice shares."""
    first_placed: float = 0.0
    top_placed: float = 0.0
    unlisted_placed: float = 0.0
    """Placements in the first, in a top-3 and in no listed choice (share x placements, so they sum)."""
    justified_envy: int = 0
    idle_seats: int = 0
    split_families: int = 0
    group_schools: int = 0
    """Schools whose run recorded the priority group of each pupil: the others are not in `by_group`."""
    by_group: dict[str, list[int]] = field(default_factory=dict)
    """Group id (text) or `NO_GROUP` -> [pupils served every, some, no requested day]."""

    @classmethod
    def of(cls, part: dict[str, Any] | None) -> Fairness:
        """One run's figures from its summary's `fairness` (`webapp.run_summary.fairness_part`); none -> empty."""
        if not part:
            return cls()
        served, choices = part["served"], part["choices"]
        placed = int(choices["placed"])
        by_group = part.get("by_group")
        return cls(1, int(served["fully"]), int(served["partly"]), int(served["not_at_all"]), placed,
                   placed * float(choices["first"]), placed * float(choices["top"]), placed * float(choices["none"]),
                   int(part["justified_envy"]), int(part["idle_seats"]), int(part["split_families"]),
                   int(by_group is not None),
                   {str(group): [int(counts["fully"]), int(counts["partly"]), int(counts["not_at_all"])]
                    for group, counts in (by_group or {}).items()})

    def add(self, other: Fairness) -> None:
        for name in ("schools", "fully", "partly", "not_at_all", "placed", "first_placed", "top_placed",
                     "unlisted_placed", "justified_envy", "idle_seats", "split_families", "group_schools"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for group, counts in other.by_group.items():
            mine = self.by_group.setdefault(group, [0, 0, 0])
            for i, value in enumerate(counts):
                mine[i] += value

    def _share(self, part: float) -> float | None:
        return part / self.placed if self.schools and self.placed else None

    @property
    def first(self) -> float | None:
        return self._share(self.first_placed)

    @property
    def top(self) -> float | None:
        return self._share(self.top_placed)

    @property
    def unlisted(self) -> float | None:
        return self._share(self.unlisted_placed)

    def as_row(self) -> dict[str, Any]:
        """Counts and shares for tables and exports; all None when no school here has fairness figures."""
        known = bool(self.schools)
        return {
            "schools": self.schools,
            "fully": self.fully if known else None,
            "partly": self.partly if known else None,
            "not_at_all": self.not_at_all if known else None,
            "first": self.first,
            "top": self.top,
            "unlisted": self.unlisted,
            "justified_envy": self.justified_envy if known else None,
            "idle_seats": self.idle_seats if known else None,
            "split_families": self.split_families if known else None,
        }


@dataclass(frozen=True)
class GroupServed:
    """Pupils of one priority group (or of none: `group_id` None) by how many requested days they were served."""

    group_id: int | None
    name: str
    """The group's name in the reader's language."""
    fully: int
    partly: int
    not_at_all: int

    @property
    def requesting(self) -> int:
        return self.fully + self.partly + self.not_at_all

    @property
    def share_fully(self) -> float | None:
        """Served every requested day / requesting; None when nobody of the group asked (never 0 %)."""
        return self.fully / self.requesting if self.requesting else None


def served_by_group(fairness: Fairness, groups: Sequence[PriorityGroup]) -> list[GroupServed] | None:
    """One row per priority group of the city (`groups`, in their order: heaviest first), then one for pupils of no
    group; a group no longer in use appears only when it has pupils here. None when no school here recorded groups.
    A group id the list does not know (it cannot be deleted while tagged, so only by hand) is shown by its id."""
    if not fairness.group_schools:
        return None
    known = {str(group.id): group for group in groups}
    rows = []
    for group in groups:
        counts = fairness.by_group.get(str(group.id))
        if counts is not None or group.active:
            rows.append(GroupServed(group.id, group_name(group), *(counts or (0, 0, 0))))
    for key in sorted(set(fairness.by_group) - set(known) - {NO_GROUP}, key=lambda k: (len(k), k)):
        rows.append(GroupServed(int(key), _("Group %(id)s", id=key), *fairness.by_group[key]))
    rows.append(GroupServed(None, _("No priority group"), *fairness.by_group.get(NO_GROUP, (0, 0, 0))))
    return rows


class Hidden(StrEnum):
    """Why a count of the table by priority group is not shown."""

    SMALL = "small"
    """1 to `min_cell` - 1 pupils: shown as "<5"."""
    PROTECTING = "protecting"
    """Any number, hidden so that a small count beside it cannot be worked out by subtraction."""


def check_min_cell(value: Any) -> int:
    """The `BUREAU_MIN_CELL` setting as a whole number of at least `MIN_CELL_FLOOR`, else a sentence saying why."""
    if isinstance(value, bool) or not isinstance(value, int) or value < MIN_CELL_FLOOR:
        raise ValueError(f"BUREAU_MIN_CELL must be a whole number of at least {MIN_CELL_FLOOR} (got {value!r}): "
                         "below that a count shown as \"<N\" could be worked out from the counts beside it.")
    return value


def suppress_counts(rows: Sequence[Sequence[int]], min_cell: int,
                    totals_known: bool | Sequence[Hidden | None] = True,
                    hidden: Sequence[Sequence[Hidden | None]] | None = None) -> list[list[Hidden | None]]:
    """Which counts of a table to hide: for each row of parts (fully, partly, not_at_all for the tables by group
    or level; any number of parts, the same in every row), the marks of its cells [the row's total, *parts], None
    where the count is shown.

    A count of 1 to `min_cell` - 1 is hidden (`Hidden.SMALL`); 0 is shown. Then, while an identity lets a reader
    narrow a hidden count down to one value, one more count of that identity is hidden (`Hidden.PROTECTING`): the
    smallest shown non-zero part (the next smallest of the row, or of the column), else the row's total, else a
    shown 0. The identities are each row's total = the sum of its parts and each column's sum over the rows, with
    the column's total as the page shows it beside the table: `totals_known` True (shown), False (not shown: no
    column identity), or the marks of each column's total (None shown, `Hidden.SMALL` known to be 1 to
    `min_cell` - 1, `Hidden.PROTECTING` hidden), which this table cannot change. The reader is taken to know that
    "<N" is 1 to N - 1 and that a count hidden to protect another is at least N (or, when it is 0, any number).
    `hidden`: marks some other page gives these rows already (a school's own page, beside its district's table),
    kept, so that setting the two pages side by side shows nothing either hides. Shown counts are never changed,
    only hidden.
    """
    cells = [[sum(row), *row] for row in rows]
    marks: list[list[Hidden | None]] = [[Hidden.SMALL if 0 < value < min_cell else None for value in row]
                                        for row in cells]
    for row_marks, kept in zip(marks, hidden or (), strict=False):
        for c, mark in enumerate(kept):
            row_marks[c] = row_marks[c] or mark
    width = len(cells[0]) if cells else 0
    identities: list[list[tuple[int, int, int]]] = [
        [(-1, r, 0), *((1, r, c) for c in range(1, width))] for r in range(len(cells))]
    fixed: set[tuple[int, int]] = set()
    if cells and totals_known is not False:
        totals: list[Hidden | None] = [None] * width if totals_known is True else list(totals_known)
        t = len(cells)  # the column totals, as a row the table reads but never hides
        cells.append([sum(row[c] for row in cells) for c in range(width)])
        marks.append(totals)
        fixed = {(t, c) for c in range(width)}
        identities += [[(-1, t, c), *((1, r, c) for r in range(t))] for c in range(width)]

    def bounds(r: int, c: int) -> tuple[float, float]:
        value, mark = cells[r][c], marks[r][c]
        if mark is None:
            return value, value
        if mark is Hidden.SMALL:
            return 1, min_cell - 1
        return (min_cell, math.inf) if value >= min_cell else (0, math.inf)

    def pinned(terms: list[tuple[int, int, int]]) -> bool:
        """Whether sum(sign * cell) == 0 narrows some hidden cell of `terms` to one value."""
        spans = []
        for sign, r, c in terms:
            lo, hi = bounds(r, c)
            spans.append((lo, hi) if sign > 0 else (-hi, -lo))
        for i, (_sign, r, c) in enumerate(terms):
            if marks[r][c] is None:
                continue
            others = spans[:i] + spans[i + 1:]
            lo, hi = spans[i]  # this term's own range, cut by what the others leave of the sum
            if min(hi, -sum(span[0] for span in others)) - max(lo, -sum(span[1] for span in others)) < 1:
                return True
        return False

    def hideable(terms: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        return [(sign, r, c) for sign, r, c in terms if marks[r][c] is None and (r, c) not in fixed]

    def hide_next(terms: list[tuple[int, int, int]]) -> bool:
        shown = [(cells[r][c] == 0, sign < 0, cells[r][c], r, c) for sign, r, c in hideable(terms)]
        if not shown:
            return False
        *_order, r, c = min(shown)
        marks[r][c] = Hidden.PROTECTING
        return True

    def helps(terms: list[tuple[int, int, int]]) -> bool:
        """Whether hiding every count of the identity this table may hide would leave no hidden one pinned: when
        a column's total is itself small (or four groups of "<5" share a total of "<5"), nothing in the table can
        hide it."""
        shown = [(r, c) for _, r, c in hideable(terms)]
        for r, c in shown:
            marks[r][c] = Hidden.PROTECTING
        unpinned = not pinned(terms)
        for r, c in shown:
            marks[r][c] = None
        return unpinned

    changed = True
    while changed:
        changed = any(pinned(terms) and helps(terms) and hide_next(terms) for terms in identities)
    return marks[:len(rows)]


@dataclass(frozen=True)
class GroupRow:
    """A row of the table by priority group as it leaves the app: each count a number, or its mark's text when
    hidden (`suppress_counts`), so the hidden number is not in it at all."""

    name: str
    requesting: int | str
    fully: int | str
    partly: int | str
    not_at_all: int | str
    share_fully: float | str | None
    """None when nobody of the group asked; hidden with `fully` or `requesting` (it would tell them)."""


def min_cell() -> int:
    """The app's `BUREAU_MIN_CELL`: the smallest count of children the bureau sees as a number."""
    return check_min_cell(current_app.config.get("BUREAU_MIN_CELL", MIN_CELL))


def mark_text(mark: str) -> str:
    """What a hidden count shows instead, in the reader's language: "<5" (`Hidden.SMALL`) or "hidden"."""
    return str(_("<%(n)d", n=min_cell()) if mark == Hidden.SMALL else _("hidden"))


def mark_texts() -> dict[Hidden, str]:
    """`mark_text` of every mark, looked up once for a page's many counts."""
    return {mark: mark_text(mark) for mark in Hidden}


def hide_alone(value: int | None, min_cell: int) -> Hidden | None:
    """The mark of a count no identity of the page ties to others (`suppress_counts` of a row of one)."""
    return None if value is None else suppress_counts([(value,)], min_cell, False)[0][1]


def _shown(value: Any, mark: Hidden | None, text: dict[Hidden, str]) -> Any:
    return text[mark] if mark is not None and value is not None else value


Marks = dict[str, list[Hidden | None]]
"""The marks of one area's counts of children, by identity (`_identities`): [the identity's total, *its parts]."""


@dataclass(frozen=True)
class ShownArea:
    """What the bureau sees of one `Figures` (an area of one source, or one school): `Figures.as_row` and
    `Fairness.as_row` with every hidden count, and every share or rate computed from one, replaced by its mark's
    text ("<5", "hidden"), so the hidden number is not in it at all. Counts that are not of children (schools,
    teachers, empty seats) are shown as they are."""

    figures: dict[str, Any]
    fairness: dict[str, Any]
    marks: Marks

    @property
    def served_marks(self) -> list[Hidden | None]:
        """The marks of the area's pupils requesting and served every / some / no day: the column totals the page
        shows beside its tables by priority group or level."""
        return self.marks.get("served", [None, None, None, None])


def _same_pupils(figures: Figures) -> bool:
    """Whether the fairness counts cover the pupils of the tiles: then requesting = every + some + no day and
    served = every + some day, one identity."""
    fair = figures.fairness
    return (fair.schools == figures.allocated and fair.fully + fair.partly == figures.served
            and fair.fully + fair.partly + fair.not_at_all == figures.requesting)


def _identities(figures: Figures) -> dict[str, tuple[int, ...]]:
    """The counts of children of one area, as rows of parts whose total the page shows too: pupils by days served
    (requesting = every + some + no day), pupil-days (requested = covered + unmet), and counts alone. A pupil-day
    figure is taken as a count of children: 1 to N - 1 pupil-days are at most N - 1 children."""
    fair = figures.fairness
    rows: dict[str, tuple[int, ...]] = {"enrolled": (figures.enrolled,)}
    if fair.schools:
        rows["served"] = (fair.fully, fair.partly, fair.not_at_all)
        rows["envy"] = (fair.justified_envy,)
        rows["split"] = (fair.split_families,)
    if figures.allocated:
        rows["days"] = (figures.covered_days, figures.unmet_days or 0)
        if not _same_pupils(figures):
            rows["tiles"] = (figures.served, max(0, figures.requesting - figures.served))
    else:
        rows["requesting"] = (figures.requesting,)
        rows["requested_days"] = (figures.requested_days,)
    return rows


def _served_mark(figures: Figures, marks: Marks) -> Hidden | None:
    """The mark of the pupils served (every + some day) where it is not a row of its own: hidden when small, and,
    unless every and some day are both shown (they tell it anyway), when the no-day count is (requesting - served
    would tell it) or when a table beside it hid it (`served_total`)."""
    served = marks["served"]
    if small := hide_alone(figures.served, min_cell()):
        return small
    if served[1] is None and served[2] is None:
        return None
    return Hidden.PROTECTING if served[3] else marks.get("served_total", [None])[0]


def _shown_area(figures: Figures, marks: Marks) -> ShownArea:
    """`figures` as shown with the marks of its identities; rates and shares hidden with a count they are of or
    out of (a share of 1 in 3 tells the count)."""
    n = min_cell()
    text = mark_texts()
    fair = figures.fairness
    counts: dict[str, Hidden | None] = {"enrolled": marks["enrolled"][1]}
    fair_marks: dict[str, Hidden | None] = {}
    if "served" in marks:
        fair_marks.update(zip(("fully", "partly", "not_at_all"), marks["served"][1:], strict=True))
        fair_marks["justified_envy"], fair_marks["split_families"] = marks["envy"][1], marks["split"][1]
        base = hide_alone(fair.placed, n)
        for key, part in (("first", fair.first_placed), ("top", fair.top_placed), ("unlisted", fair.unlisted_placed)):
            fair_marks[key] = Hidden.PROTECTING if base or hide_alone(round(part), n) else None
    if figures.allocated:
        if "tiles" in marks:
            counts["requesting"], counts["served"] = marks["tiles"][0], marks["tiles"][1]
        else:
            counts["requesting"], counts["served"] = marks["served"][0], _served_mark(figures, marks)
        counts["requested_days"], counts["covered_days"], counts["unmet_days"] = marks["days"]
        counts["coverage"] = Hidden.PROTECTING if any(marks["days"]) else None
        counts["participation"] = Hidden.PROTECTING if counts["served"] or counts["enrolled"] else None
    else:
        counts["requesting"], counts["requested_days"] = marks["requesting"][1], marks["requested_days"][1]
    return ShownArea({key: _shown(value, counts.get(key), text) for key, value in figures.as_row().items()},
                     {key: _shown(value, fair_marks.get(key), text) for key, value in fair.as_row().items()},
                     marks)


def shown_area(figures: Figures) -> ShownArea:
    """Hide the small counts of children of one area shown alone (a headline, a school's own page), by the one
    rule (`suppress_counts`) over the identities its page shows (docs/bureau.md "Small counts are hidden")."""
    return _shown_area(figures, _alone_marks(figures))


def _alone_marks(figures: Figures) -> Marks:
    """The marks of one area's counts of children by the identities of its own page alone (`shown_area`)."""
    n = min_cell()
    marks = {name: suppress_counts([row], n, False)[0] for name, row in _identities(figures).items()}
    _link_served([figures], [marks])
    return marks


def shown_table(rows: Sequence[Figures], total: ShownArea | None, total_figures: Figures | None = None,
                ) -> list[ShownArea]:
    """The rows of a table of areas (the districts of the city, the schools of a district) as shown beside their
    total (`total`, as its page shows it): each row keeps what it hides on its own page, and, column by column,
    more is hidden while a hidden count could be worked out from the total and the other rows."""
    n = min_cell()
    identities = [_identities(figures) for figures in rows]
    own = [_alone_marks(figures) for figures in rows]
    marks: list[Marks] = [dict(row) for row in own]
    total_identities = _identities(total_figures) if total_figures is not None else {}
    for name in sorted({name for row in identities for name in row}):
        indexes = [i for i, row in enumerate(identities) if name in row]
        table = [identities[i][name] for i in indexes]
        sums = tuple(sum(column) for column in zip(*table, strict=True))
        totals: bool | list[Hidden | None] = True  # a total the page does not show as such: taken as known
        if total is not None and name in total.marks and total_identities.get(name) == sums:
            totals = total.marks[name]
        for i, row_marks in zip(indexes, suppress_counts(table, n, totals, [own[i][name] for i in indexes]),
                                strict=True):
            marks[i][name] = row_marks
    _link_served(rows, marks, total_figures, total)
    return [_shown_area(figures, row_marks) for figures, row_marks in zip(rows, marks, strict=True)]


def _link_served(rows: Sequence[Figures], marks: list[Marks], total_figures: Figures | None = None,
                 total: ShownArea | None = None) -> None:
    """The pupils served (every + some day) are shown too: requesting = served + no day is one more row of the
    same rule for each area (and, beside a total, one more column). While it hides a served count that every and
    some day would still add up to, one of them is hidden too; then both tables again, until neither hides more."""
    n = min_cell()
    same = [i for i, figures in enumerate(rows) if "served" in marks[i] and "tiles" not in marks[i]]
    if not same:
        return
    triples = [(rows[i].fairness.fully, rows[i].fairness.partly, rows[i].fairness.not_at_all) for i in same]
    triple_totals: bool | list[Hidden | None] = False
    total_marks: bool | list[Hidden | None] = False
    if total is not None and total_figures is not None and "served" in total.marks and "tiles" not in total.marks:
        fair = total_figures.fairness
        if (len(same) == sum("served" in row for row in marks)
                and tuple(map(sum, zip(*triples, strict=True))) == (fair.fully, fair.partly, fair.not_at_all)):
            triple_totals = total.marks["served"]
            total_marks = [triple_totals[0], _served_mark(total_figures, total.marks), triple_totals[3]]
    changed = True
    while changed:
        changed = False
        pairs = [(rows[i].served, rows[i].fairness.not_at_all) for i in same]
        seeds = [[marks[i]["served"][0], _served_mark(rows[i], marks[i]), marks[i]["served"][3]] for i in same]
        for i, (fully, partly, _none), (requesting, served, none) in zip(
                same, triples, suppress_counts(pairs, n, total_marks, seeds), strict=True):
            row = list(marks[i]["served"])
            row[0], row[3] = row[0] or requesting, row[3] or none
            if served and not _served_mark(rows[i], marks[i]):
                marks[i]["served_total"] = [served]
                if row[1] is None and row[2] is None:  # every + some day would still tell it
                    row[1 if (fully == 0, fully) <= (partly == 0, partly) else 2] = Hidden.PROTECTING
            if row != marks[i]["served"]:
                marks[i]["served"], changed = row, True
        if changed:
            for i, row_marks in zip(same, suppress_counts(triples, n, triple_totals,
                                                          [marks[i]["served"] for i in same]), strict=True):
                marks[i]["served"] = row_marks


@dataclass(frozen=True)
class ShownCity:
    """Every area of a `CityStats` as the bureau sees it, the same on its pages and in its workbook: the totals by
    source alone, each district's row beside them, each school's row beside its district's."""

    total: dict[str, ShownArea]
    districts: dict[tuple[int | None, str], ShownArea]
    schools: dict[int, ShownArea]
    """By school id: its current term's figures."""


def shown_city(stats: CityStats) -> ShownCity:
    """Each district's row beside the totals, each school's beside its district's (`shown_table`)."""
    sources = (Source.PUBLISHED, Source.DRAFT, Source.NOT_ALLOCATED)
    total: dict[str, ShownArea] = {source: shown_area(stats.rollup.part(source)) for source in sources}
    districts: dict[tuple[int | None, str], ShownArea] = {}
    schools: dict[int, ShownArea] = {}
    for source in sources:
        parts = [d.rollup.part(source) for d in stats.districts]
        for d, shown in zip(stats.districts, shown_table(parts, total[source], stats.rollup.part(source)),
                            strict=True):
            districts[(d.district_id, source)] = shown
        for d in stats.districts:
            mine = [s for s in d.schools if s.source == source]
            for s, shown in zip(mine, shown_table([s.figures for s in mine], districts[(d.district_id, source)],
                                                  d.rollup.part(source)), strict=True):
                schools[s.school_id] = shown
    return ShownCity(total, districts, schools)


AreaKey = tuple[str, int | None, str]
"""("total", None, source), ("district", district id, source) or ("school", school id, source)."""


@dataclass(frozen=True)
class ShownPage:
    """One page (or workbook) of the bureau as it is shown: its headline by source, the rows of its tables, its
    trend and its tables by priority group. Every area is shown as the table of the reader's whole scope shows it
    (`shown_city` of the city, or of a district user's district), so a district's page hides what the city's table
    hides of it, and setting the pages of one reader side by side tells no more than each."""

    headline: dict[str, ShownArea]
    districts: dict[tuple[int | None, str], ShownArea]
    schools: dict[int, ShownArea]
    trend: list[ShownArea]
    """The published figures of each term of `stats.trend`; the current one as the headline shows it."""
    area: tuple[str, int | None]
    """The page's own area: ("total", None), ("district", id) or ("school", id)."""
    by_group: dict[AreaKey, list[GroupRow] | None] = field(default_factory=dict)
    """The tables by priority group of every area of the scope, as shown together (`shown_groups`)."""

    def groups(self, source: str, district_id: int | None = None) -> list[GroupRow] | None:
        """The table by priority group of the page's own area, or of one of its districts (a school's page has
        only its own)."""
        kind, area_id = self.area
        if district_id is not None and kind == "total":
            kind, area_id = "district", district_id
        return self.by_group.get((kind, area_id, source))

    def district(self, district_id: int | None, source: str) -> ShownArea:
        """A district's row of the page's tables: on a school's page, the school's own figures."""
        return self.headline[source] if self.area[0] == "school" else self.districts[(district_id, source)]


def shown_page(scope: CityStats, stats: CityStats, *, district_id: int | None = None,
               school_id: int | None = None, groups: Sequence[PriorityGroup] | None = None) -> ShownPage:
    """The page of `stats` (the city, one district or one school of `scope`, the reader's whole scope); with the
    city's priority `groups`, its tables by group too."""
    city = shown_city(scope)
    sources = (Source.PUBLISHED, Source.DRAFT, Source.NOT_ALLOCATED)
    headline: dict[str, ShownArea] = dict(city.total)
    area: tuple[str, int | None] = ("total", None)
    if district_id is not None:
        headline = {source: city.districts.get((district_id, source)) or shown_area(stats.rollup.part(source))
                    for source in sources}  # a district of no school with a term has empty figures
        area = ("district", district_id)
    elif school_id is not None:
        school = next((s for s in stats.schools if s.school_id == school_id), None)
        headline = {source: city.schools[school_id] if school and school.source == source
                    else shown_area(stats.rollup.part(source)) for source in sources}
        area = ("school", school_id)
    published = stats.rollup.published
    trend = [headline[Source.PUBLISHED] if rollup.published == published else shown_area(rollup.published)
             for _name, rollup in stats.trend]
    by_group = shown_groups(scope, groups, city) if groups is not None else {}
    return ShownPage(headline, city.districts, city.schools, trend, area, by_group)


def shown_groups(scope: CityStats, groups: Sequence[PriorityGroup], city: ShownCity,
                 ) -> dict[AreaKey, list[GroupRow] | None]:
    """The tables by priority group of the scope's total, each district and each school, published and drafts
    apart, as shown together: each area's table beside its served counts as shown (`city`), and each group's row
    of the districts (of a district's schools) beside that group's row of the total (of the district), hidden
    until no identity of either kind tells a count. The same rule, `suppress_counts`, each time; a school's table
    appears only in its workbook, but it is checked against its district's all the same."""
    n = min_cell()
    text = mark_texts()
    shown: dict[AreaKey, list[GroupRow] | None] = {}
    for source in (Source.PUBLISHED, Source.DRAFT):
        areas: dict[AreaKey, tuple[Figures, ShownArea]] = {
            ("total", None, source): (scope.rollup.part(source), city.total[source])}
        children: dict[AreaKey, list[AreaKey]] = {}
        for d in scope.districts:
            district: AreaKey = ("district", d.district_id, source)
            areas[district] = (d.rollup.part(source), city.districts[(d.district_id, source)])
            children.setdefault(("total", None, source), []).append(district)
            for school in d.schools:
                if school.source == source:
                    key: AreaKey = ("school", school.school_id, source)
                    areas[key] = (school.figures, city.schools[school.school_id])
                    children.setdefault(district, []).append(key)
        listed = {key: served_by_group(figures.fairness, groups) for key, (figures, _area) in areas.items()}
        order = [row.group_id for row in listed[("total", None, source)] or ()]
        rows = {key: [tuple(figures.fairness.by_group.get(NO_GROUP if group is None else str(group)) or (0, 0, 0))
                      for group in order]
                for key, (figures, _area) in areas.items() if listed[key] is not None}
        totals = {key: _table_totals(areas[key][0], areas[key][0].fairness.group_schools, areas[key][1])
                  for key in rows}
        marks = {key: suppress_counts(rows[key], n, totals[key]) for key in rows}
        changed = True
        while changed:
            changed = False
            for parent, kids in children.items():
                kids = [kid for kid in kids if kid in rows]
                if parent not in rows or not kids or sum(areas[kid][0].fairness.group_schools for kid in kids) \
                        != areas[parent][0].fairness.group_schools:
                    continue  # not every school of the parent recorded groups: the rows do not add up to it
                for g in range(len(order)):
                    found = suppress_counts([rows[kid][g] for kid in kids], n, marks[parent][g],
                                            [marks[kid][g] for kid in kids])
                    for kid, kid_marks in zip(kids, found, strict=True):
                        if kid_marks != marks[kid][g]:
                            marks[kid][g], changed = kid_marks, True
            for key in rows:
                found = suppress_counts(rows[key], n, totals[key], marks[key])
                if found != marks[key]:
                    marks[key], changed = found, True
        for key, listed_rows in listed.items():
            if listed_rows is None:
                shown[key] = None
                continue
            by_id = {group: (row, row_marks) for group, row, row_marks in zip(order, rows[key], marks[key],
                                                                                strict=True)}
            table = []
            for served in listed_rows:
                counts, row_marks = by_id.get(served.group_id, ((served.fully, served.partly, served.not_at_all),
                                                                [Hidden.PROTECTING] * 4))
                values, share = _shown_row(counts, row_marks, text)
                table.append(GroupRow(served.name, values[0], values[1], values[2], values[3], share))
            shown[key] = table
    return shown


def shown_slot(figures: Figures, slot: Slot, area: ShownArea | None = None,
               ) -> tuple[int | str, int | str, float | str | None]:
    """(pupils requesting, pupils seated, coverage) of one weekday x period as shown to the bureau: the identity
    requesting = seated + not seated is a row of the one rule, and the coverage is hidden with its counts. The grid
    adds up to the area's pupil-days (exactly, where pupils ask for one period a day), so while `area` (the area
    as its page shows it) hides any of its pupil-day figures, every count of its grid but 0 is hidden too."""
    asked, seated = figures.slots.get(slot, (0, 0))
    n = min_cell()
    text = mark_texts()
    if not figures.allocated:
        return _shown(asked, hide_alone(asked, n), text), 0, None
    marks = suppress_counts([(seated, max(0, asked - seated))], n, False)[0]
    if area is not None and any(area.marks.get("days", ())):
        marks = [mark or (Hidden.PROTECTING if value else None) for mark, value in zip(marks, (asked, seated, 0),
                                                                                        strict=True)]
    coverage = figures.slot_coverage(slot)
    return (_shown(asked, marks[0], text), _shown(seated, marks[1], text),
            text[Hidden.PROTECTING] if (marks[0] or marks[1]) and coverage is not None else coverage)


def _table_totals(figures: Figures, rows_schools: int, area: ShownArea | None) -> list[Hidden | None] | bool:
    """The column totals of a table by group or level as the page shows them (`area`, else the area alone): the
    area's served counts, when the table covers the same schools as they do; otherwise taken as known (the rule
    then hides more, never less)."""
    if rows_schools != figures.fairness.schools:
        return True
    return (area or shown_area(figures)).served_marks


def _shown_rows(rows: Sequence[tuple[int, int, int]], totals: Sequence[Hidden | None] | bool,
                ) -> list[tuple[list[int | str], float | str | None]]:
    """Each row's [requesting, fully, partly, not_at_all] as shown, and its share served every day (hidden with
    `fully` or `requesting`, which it would tell; None when nobody asked)."""
    text = mark_texts()
    return [_shown_row(row, row_marks, text)
            for row, row_marks in zip(rows, suppress_counts(rows, min_cell(), totals), strict=True)]


def _shown_row(counts: Sequence[int], marks: Sequence[Hidden | None], text: dict[Hidden, str],
               ) -> tuple[list[int | str], float | str | None]:
    """A row of (fully, partly, not_at_all) with its marks as shown: [requesting, fully, partly, not_at_all], and
    its share served every day, hidden with `fully` or `requesting` (it would tell them); None when nobody asked."""
    fully, partly, none = counts
    requesting = fully + partly + none
    values = [_shown(value, mark, text) for value, mark in zip((requesting, fully, partly, none), marks, strict=True)]
    share = fully / requesting if requesting else None
    return values, text[Hidden.PROTECTING] if marks[0] or marks[1] else share


def shown_by_level(figures: Figures, by_level: dict[str, dict[str, int]], area: ShownArea | None = None,
                   ) -> list[tuple[str, list[int | str]]]:
    """One school's pupils served every / some / no day by priority level (its run's `served_by_priority`), as the
    bureau's school page shows them: the same rule as the tables by group, the school's own served counts being
    the column totals."""
    levels = list(by_level)
    rows = [(int(by_level[level]["fully"]), int(by_level[level]["partly"]), int(by_level[level]["not_at_all"]))
            for level in levels]
    shown = _shown_rows(rows, _table_totals(figures, 1, area))
    return [(level, values[1:]) for level, (values, _share) in zip(levels, shown, strict=True)]


@dataclass
class Figures:
    """Summable coverage figures of one term, or of several of one source (see `Rollup`, which never mixes them)."""

    schools: int = 0
    allocated: int = 0
    """Schools among `schools` whose figures come from an allocation; without one, no rate is defined."""
    offering: int = 0
    enrolled: int = 0
    requesting: int = 0
    served: int = 0
    requested_days: int = 0
    covered_days: int = 0
    teachers: int = 0
    teacher_sessions: int = 0
    max_load: int = 0
    slots: dict[Slot, list[int]] = field(default_factory=dict)
    """(day, period) -> [pupils requesting the slot, pupils seated in it]."""
    fairness: Fairness = field(default_factory=Fairness)

    @property
    def unmet_days(self) -> int | None:
        return max(0, self.requested_days - self.covered_days) if self.allocated else None

    @property
    def participation(self) -> float | None:
        return self.served / self.enrolled if self.allocated and self.enrolled else None

    @property
    def coverage(self) -> float | None:
        """Covered / requested pupil-days; None when nobody asked or when nothing here is allocated yet."""
        return self.covered_days / self.requested_days if self.allocated and self.requested_days else None

    @property
    def avg_load(self) -> float | None:
        return self.teacher_sessions / self.teachers if self.teachers else None

    def add(self, other: Figures) -> None:
        self.schools += other.schools
        self.allocated += other.allocated
        self.offering += other.offering
        self.enrolled += other.enrolled
        self.requesting += other.requesting
        self.served += other.served
        self.requested_days += other.requested_days
        self.covered_days += other.covered_days
        self.teachers += other.teachers
        self.teacher_sessions += other.teacher_sessions
        self.max_load = max(self.max_load, other.max_load)
        self.fairness.add(other.fairness)
        for slot, (asked, seated) in other.slots.items():
            mine = self.slots.setdefault(slot, [0, 0])
            mine[0] += asked
            mine[1] += seated

    def slot_coverage(self, slot: Slot) -> float | None:
        asked, seated = self.slots.get(slot, (0, 0))
        return min(1.0, seated / asked) if asked and self.allocated else None

    def as_row(self) -> dict[str, Any]:
        """The summable figures and the rates, for tables and exports; seat-side ones are None when nothing
        here is allocated (unknown, not zero)."""
        allocated = bool(self.allocated)
        return {
            "schools": self.schools,
            "offering": self.offering,
            "enrolled": self.enrolled,
            "requesting": self.requesting,
            "served": self.served if allocated else None,
            "participation": self.participation,
            "requested_days": self.requested_days,
            "covered_days": self.covered_days if allocated else None,
            "coverage": self.coverage,
            "unmet_days": self.unmet_days,
            "teachers": self.teachers if allocated else None,
            "avg_load": self.avg_load,
            "max_load": self.max_load if allocated else None,
        }


@dataclass
class Rollup:
    """Figures of several schools kept apart by source: published, draft and not-yet-allocated figures are never
    summed together. The headline is `published`; `draft` is shown beside it, labelled; `not_allocated` only
    counts schools and their requests."""

    published: Figures = field(default_factory=Figures)
    draft: Figures = field(default_factory=Figures)
    not_allocated: Figures = field(default_factory=Figures)

    def part(self, source: str) -> Figures:
        parts: dict[str, Figures] = {Source.PUBLISHED: self.published, Source.DRAFT: self.draft}
        return parts.get(source, self.not_allocated)

    def add(self, source: str, figures: Figures) -> None:
        self.part(source).add(figures)

    @property
    def parts(self) -> tuple[Figures, Figures, Figures]:
        return self.published, self.draft, self.not_allocated

    @property
    def schools(self) -> int:
        return sum(f.schools for f in self.parts)

    @property
    def offering(self) -> int:
        return sum(f.offering for f in self.parts)

    @property
    def enrolled(self) -> int:
        return sum(f.enrolled for f in self.parts)


@dataclass
class TermStats:
    term_id: int
    term_name: str
    school_id: int
    school_code: str
    school_name: str
    district_id: int | None
    district_name: str
    run_id: int | None
    source: Source
    figures: Figures
    opens: str = ""
    """When requests open (ISO text, "" when unset): orders the trend, oldest first."""
    weekdays: tuple[int, ...] = ()


@dataclass
class DistrictStats:
    district_id: int | None
    name: str
    rollup: Rollup
    schools: list[TermStats]


@dataclass
class CityStats:
    rollup: Rollup
    districts: list[DistrictStats]
    schools: list[TermStats]
    """Each school's current term, ordered by district then school code."""
    trend: list[tuple[str, Rollup]]
    """Every term name seen, oldest first, with the figures of all schools in that term, by source."""
    periods: list[str]
    weekdays: list[int]


def _source_runs(where: ColumnElement[bool]) -> Any:
    """Subquery: every term in scope with its source run (published, else latest done) and draft flag."""
    latest = (
        select(AllocationRun.term_id, func.max(AllocationRun.id).label("run_id"))
        .where(AllocationRun.state == RunState.DONE)
        .group_by(AllocationRun.term_id)
        .subquery()
    )
    return (
        select(
            Term.id.label("term_id"),
            Term.school_id.label("school_id"),
            func.coalesce(Term.published_run_id, latest.c.run_id).label("run_id"),
            Term.published_run_id.label("published_run_id"),
        )
        .join(School, School.id == Term.school_id)
        .outerjoin(latest, latest.c.term_id == Term.id)
        .where(where)
        .subquery("source")
    )


def term_stats(where: ColumnElement[bool] | None = None) -> list[TermStats]:
    """Figures of every term of every school matching `where` (a filter on School).

    Terms with a source run read the run's stored summary (`webapp.run_summary`); a run without one yet is
    counted from its rows, and a term without a run counts its live requests. Three queries when every run
    has a summary, whatever the number of schools.
    """
    where = true() if where is None else where
    src = _source_runs(where)

    sessions = select(Session.term_id, func.count().label("n")).group_by(Session.term_id).subquery()
    rows = db.session.execute(
        select(
            src.c.term_id,
            src.c.run_id,
            src.c.published_run_id,
            Term.name,
            School.id,
            School.code,
            School.name,
            School.district_id,
            District.name,
            func.coalesce(sessions.c.n, 0),
            Term.requests_open_at,
            Term.weekdays,
            AllocationRun.summary,
        )
        .select_from(src)
        .join(Term, Term.id == src.c.term_id)
        .join(School, School.id == src.c.school_id)
        .outerjoin(District, District.id == School.district_id)
        .outerjoin(sessions, sessions.c.term_id == src.c.term_id)
        .outerjoin(AllocationRun, AllocationRun.id == src.c.run_id)
    ).all()
    terms: dict[int, TermStats] = {}
    summaries: dict[int, dict[str, Any]] = {}
    for (
        term_id,
        run_id,
        published,
        term_name,
        school_id,
        code,
        name,
        district_id,
        district,
        n_sessions,
        opens,
        weekdays,
        summary,
    ) in rows:
        if run_id is None:
            source = Source.NOT_ALLOCATED
        else:
            source = Source.PUBLISHED if published == run_id else Source.DRAFT
        figures = Figures(schools=1, allocated=int(run_id is not None), offering=int(n_sessions > 0))
        terms[term_id] = TermStats(
            term_id,
            term_name,
            school_id,
            code,
            name,
            district_id,
            district or "",
            run_id,
            source,
            figures,
            opens.isoformat() if opens else "",
            tuple(int(d) for d in weekdays or ()),
        )
        if run_id is not None and run_summary.is_current(summary):
            summaries[run_id] = summary
    if not terms:
        return []

    enrolled = dict(
        db.session.execute(
            select(Pupil.school_id, func.count())
            .join(School, School.id == Pupil.school_id)
            .where(Pupil.active, where)
            .group_by(Pupil.school_id)
        ).all()
    )
    uncounted = [s.run_id for s in terms.values() if s.run_id is not None and s.run_id not in summaries]
    summaries.update(run_summary.count(uncounted))
    live = run_summary.request_figures(term_id for term_id, s in terms.items() if s.run_id is None)
    for term_id, stats in terms.items():
        figures = stats.figures
        figures.enrolled = int(enrolled.get(stats.school_id, 0))
        if stats.run_id is None:
            requests = live[term_id]
            figures.requesting, figures.requested_days = requests["requesting"], requests["requested_days"]
            figures.slots = {slot: [asked, 0] for slot, asked in requests["asked"].items()}
            continue
        summary = summaries.get(stats.run_id) or run_summary.empty()
        figures.requesting, figures.requested_days = summary["requesting"], summary["requested_days"]
        figures.served, figures.covered_days = summary["served"], summary["covered_days"]
        figures.teachers, figures.teacher_sessions = summary["teachers"], summary["teacher_sessions"]
        figures.max_load = summary["max_load"]
        figures.fairness = Fairness.of(summary.get("fairness"))
        figures.slots = {(int(day), str(period)): [int(asked), int(seated)]
                         for day, period, asked, seated in summary["slots"]}
    return list(terms.values())


def city_stats(where: ColumnElement[bool] | None = None) -> CityStats:
    """Current-term figures per school, rolled up by district and in all, plus the trend."""
    all_terms = term_stats(where)
    current: dict[int, TermStats] = {}
    for stats in all_terms:
        if stats.school_id not in current or stats.term_id > current[stats.school_id].term_id:
            current[stats.school_id] = stats
    schools = sorted(current.values(), key=lambda s: (s.district_name, s.school_code))

    city = Rollup()
    districts: dict[int | None, DistrictStats] = {}
    for stats in schools:
        district = districts.get(stats.district_id)
        if district is None:
            district = districts[stats.district_id] = DistrictStats(
                stats.district_id, stats.district_name, Rollup(), []
            )
        district.rollup.add(stats.source, stats.figures)
        district.schools.append(stats)
        city.add(stats.source, stats.figures)

    trend_by_name: dict[str, Rollup] = {}
    order: dict[str, tuple[int, str, int]] = {}
    for stats in all_terms:
        trend_by_name.setdefault(stats.term_name, Rollup()).add(stats.source, stats.figures)
        key = (0 if stats.opens else 1, stats.opens, stats.term_id)
        order[stats.term_name] = min(order.get(stats.term_name, key), key)
    trend = [(name, trend_by_name[name]) for name in sorted(trend_by_name, key=lambda n: order[n])]

    slots = {slot for part in city.parts for slot in part.slots}
    return CityStats(
        rollup=city,
        districts=sorted(districts.values(), key=lambda d: d.name),
        schools=schools,
        trend=trend,
        periods=_period_order(slots),
        weekdays=sorted({day for day, _ in slots} | {d for s in schools for d in s.weekdays}) or [1, 2, 3, 4, 5],
    )


def _period_order(slots: Iterable[Slot]) -> list[str]:
    return sorted({period for _, period in slots}, key=lambda p: (len(p), p))


# --------------------------------------------------------------------------- capacity advice rollup


@dataclass
class HiringPlan:
    """What-if advice summed over schools: teachers to hire by qualification, seats to add by slot."""

    schools: int = 0
    teachers: dict[str, int] = field(default_factory=dict)
    """Qualification tag ("" = any teacher) -> teachers to hire."""
    seats: dict[Slot, int] = field(default_factory=dict)
    teachers_by_slot: dict[Slot, dict[str, int]] = field(default_factory=dict)
    pupil_days_covered: int = 0
    """More pupil-days covered, weighted like coverage: the schools' items, which add up to their gaps."""
    demand: int = 0
    coverage_now: int = 0
    coverage_after: int = 0

    @property
    def total_teachers(self) -> int:
        return sum(self.teachers.values())

    @property
    def total_seats(self) -> int:
        return sum(self.seats.values())

    def add(self, advice: dict[str, Any]) -> None:
        """Add one school's advice (the JSON of `scheduler.whatif.advice_to_json`)."""
        self.schools += 1
        items = list(advice.get("items") or [])
        hired = advice.get("hired")
        if hired is None:  # without a week total, a teacher seen at several slots is counted once per tag
            hired = {}
            for item in items:
                for tag, count in (item.get("extra_teachers") or {}).items():
                    hired[tag] = max(hired.get(tag, 0), int(count))
        for tag, count in hired.items():
            self.teachers[str(tag)] = self.teachers.get(str(tag), 0) + int(count)
        for item in items:
            slot = (int(item["day"]), str(item["period"]))
            self.seats[slot] = self.seats.get(slot, 0) + int(item.get("extra_seats") or 0)
            by_tag = self.teachers_by_slot.setdefault(slot, {})
            for tag, count in (item.get("extra_teachers") or {}).items():
                by_tag[str(tag)] = by_tag.get(str(tag), 0) + int(count)
            self.pupil_days_covered += item_gain(item)
        self.demand += int(advice.get("demand") or 0)
        self.coverage_now += int(advice.get("coverage_now") or 0)
        self.coverage_after += int(advice.get("coverage_after") or 0)

    def merge(self, other: HiringPlan) -> None:
        self.schools += other.schools
        for tag, count in other.teachers.items():
            self.teachers[tag] = self.teachers.get(tag, 0) + count
        for slot, seats in other.seats.items():
            self.seats[slot] = self.seats.get(slot, 0) + seats
        for slot, by_tag in other.teachers_by_slot.items():
            mine = self.teachers_by_slot.setdefault(slot, {})
            for tag, count in by_tag.items():
                mine[tag] = mine.get(tag, 0) + count
        self.pupil_days_covered += other.pupil_days_covered
        self.demand += other.demand
        self.coverage_now += other.coverage_now
        self.coverage_after += other.coverage_after


def item_gain(item: dict[str, Any]) -> int:
    """An advice item's pupil-days gained; advice stored before they were counted once per pupil-day has only
    its pupils per period (`pupils_covered`)."""
    return int(item.get("pupil_days_covered", item.get("pupils_covered")) or 0)


def rollup_advice(entries: Iterable[tuple[str, dict[str, Any]]]) -> tuple[dict[str, HiringPlan], HiringPlan]:
    """(district name, advice JSON) pairs -> a plan per district and the total."""
    by_district: dict[str, HiringPlan] = {}
    total = HiringPlan()
    for district, advice in entries:
        plan = by_district.setdefault(district, HiringPlan())
        plan.add(advice)
    for name in sorted(by_district):
        total.merge(by_district[name])
    return dict(sorted(by_district.items())), total


def latest_advice(
    where: ColumnElement[bool] | None = None,
) -> list[tuple[int, str, str, str, dict[str, Any]]]:
    """(school id, school code, school name, district name, advice JSON) of the newest finished advice of each
    school's current term, for schools matching `where`."""

    where = true() if where is None else where
    current = select(func.max(Term.id)).join(School, School.id == Term.school_id).where(where)
    current = current.group_by(Term.school_id)
    newest = (
        select(func.max(CapacityAdvice.id))
        .where(CapacityAdvice.state == RunState.DONE, CapacityAdvice.term_id.in_(current))
        .group_by(CapacityAdvice.term_id)
    )
    rows = db.session.execute(
        select(School.id, School.code, School.name, District.name, CapacityAdvice.result)
        .select_from(CapacityAdvice)
        .join(Term, Term.id == CapacityAdvice.term_id)
        .join(School, School.id == Term.school_id)
        .outerjoin(District, District.id == School.district_id)
        .where(CapacityAdvice.id.in_(newest))
        .order_by(District.name, School.code)
    ).all()
    return [(sid, code, name, district or "", result or {}) for sid, code, name, district, result in rows]


@dataclass
class AdviceCounts:
    schools: int
    """Schools with a current term."""
    done: int
    """Of which have finished advice for it."""
    pending: int
    """Of which have advice queued or being computed."""


def advice_counts(where: ColumnElement[bool] | None = None) -> AdviceCounts:
    """How far capacity advice has got for the current terms of the schools matching `where`."""
    where = true() if where is None else where
    current = (
        select(func.max(Term.id).label("term_id")).join(School, School.id == Term.school_id).where(where)
        .group_by(Term.school_id).subquery()
    )
    schools = db.session.scalar(select(func.count()).select_from(current)) or 0
    counts = dict(db.session.execute(
        select(CapacityAdvice.state, func.count(func.distinct(CapacityAdvice.term_id)))
        .where(CapacityAdvice.term_id.in_(select(current.c.term_id)))
        .group_by(CapacityAdvice.state)
    ).all())
    pending = sum(int(counts.get(state, 0)) for state in RunState.active())
    return AdviceCounts(int(schools), int(counts.get(RunState.DONE, 0)), pending)
