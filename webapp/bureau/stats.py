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
  when shown, in the reader's language. What leaves the app is `shown_by_group`: small counts, and those that
  would tell them, hidden (`suppress_counts`, docs/bureau.md "Small counts are hidden").
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


def suppress_counts(rows: Sequence[tuple[int, int, int]], min_cell: int, totals_known: bool = True,
                    ) -> list[list[Hidden | None]]:
    """Which counts of a table by priority group to hide: for each row of (fully, partly, not_at_all), the marks of
    its cells [requesting, fully, partly, not_at_all], None where the count is shown.

    A count of 1 to `min_cell` - 1 is hidden (`Hidden.SMALL`); 0 is shown. Then, while an identity lets a reader
    narrow a hidden count down to one value, one more count of that identity is hidden (`Hidden.PROTECTING`): the
    smallest shown non-zero part (the next smallest of the row, or of the column), else the row's total, else a
    shown 0. The identities are each row's requesting = fully + partly + not_at_all and, when `totals_known` (the
    area's fairness figures show the column sums), each column's sum over the rows. The reader is taken to know
    that "<N" is 1 to N - 1 and that a count hidden to protect another is at least N (or, when it is 0, any
    number). Shown counts are never changed, only hidden.
    """
    cells = [[fully + partly + none, fully, partly, none] for fully, partly, none in rows]
    marks: list[list[Hidden | None]] = [[Hidden.SMALL if 0 < value < min_cell else None for value in row]
                                        for row in cells]
    identities: list[tuple[list[tuple[int, int, int]], int]] = [
        ([(-1, r, 0), (1, r, 1), (1, r, 2), (1, r, 3)], 0) for r in range(len(cells))]
    if totals_known:
        identities += [([(1, r, c) for r in range(len(cells))], sum(row[c] for row in cells)) for c in range(4)]

    def bounds(r: int, c: int) -> tuple[float, float]:
        value, mark = cells[r][c], marks[r][c]
        if mark is None:
            return value, value
        if mark is Hidden.SMALL:
            return 1, min_cell - 1
        return (min_cell, math.inf) if value >= min_cell else (0, math.inf)

    def pinned(terms: list[tuple[int, int, int]], total: int) -> bool:
        """Whether sum(sign * cell) == total narrows some hidden cell of `terms` to one value."""
        spans = []
        for sign, r, c in terms:
            lo, hi = bounds(r, c)
            spans.append((lo, hi) if sign > 0 else (-hi, -lo))
        for i, (_sign, r, c) in enumerate(terms):
            if marks[r][c] is None:
                continue
            others = spans[:i] + spans[i + 1:]
            lo, hi = spans[i]  # this term's own range, cut by what the others leave of the total
            if min(hi, total - sum(span[0] for span in others)) - max(lo, total - sum(span[1] for span in others)) < 1:
                return True
        return False

    def hide_next(terms: list[tuple[int, int, int]]) -> bool:
        shown = [(cells[r][c] == 0, sign < 0, cells[r][c], r, c) for sign, r, c in terms if marks[r][c] is None]
        if not shown:
            return False
        *_order, r, c = min(shown)
        marks[r][c] = Hidden.PROTECTING
        return True

    def helps(terms: list[tuple[int, int, int]], total: int) -> bool:
        """Whether hiding every shown count of the identity would leave no hidden one pinned: when the area's
        column total is itself that small, nothing in the table can hide it (its fairness figures tell it)."""
        shown = [(r, c) for _, r, c in terms if marks[r][c] is None]
        for r, c in shown:
            marks[r][c] = Hidden.PROTECTING
        unpinned = not pinned(terms, total)
        for r, c in shown:
            marks[r][c] = None
        return unpinned

    changed = True
    while changed:
        changed = any(pinned(terms, total) and helps(terms, total) and hide_next(terms)
                      for terms, total in identities)
    return marks


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
    """The app's `BUREAU_MIN_CELL`: the smallest count of pupils of a priority group shown as a number."""
    return check_min_cell(current_app.config.get("BUREAU_MIN_CELL", MIN_CELL))


def mark_text(mark: str) -> str:
    """What a hidden count shows instead, in the reader's language: "<5" (`Hidden.SMALL`) or "hidden"."""
    return str(_("<%(n)d", n=min_cell()) if mark == Hidden.SMALL else _("hidden"))


def shown_by_group(fairness: Fairness, groups: Sequence[PriorityGroup]) -> list[GroupRow] | None:
    """`served_by_group` as shown to the bureau (pages, workbook): small counts and those that would tell them
    hidden. The column sums are taken as known, since the area's fairness figures show them."""
    rows = served_by_group(fairness, groups)
    if rows is None:
        return None
    text = {mark: mark_text(mark) for mark in Hidden}
    marks = suppress_counts([(row.fully, row.partly, row.not_at_all) for row in rows], min_cell())
    shown = []
    for row, row_marks in zip(rows, marks, strict=True):
        requesting, fully, partly, not_at_all = (
            text[mark] if mark else value
            for value, mark in zip((row.requesting, row.fully, row.partly, row.not_at_all), row_marks, strict=True))
        share = text[Hidden.PROTECTING] if row_marks[0] or row_marks[1] else row.share_fully
        shown.append(GroupRow(row.name, requesting, fully, partly, not_at_all, share))
    return shown


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
        return {Source.PUBLISHED: self.published, Source.DRAFT: self.draft}.get(source, self.not_allocated)

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
