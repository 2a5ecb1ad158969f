"""Level 1, coverage, solved the one way the allocation (`scheduler.solve`) and what-if advice (`scheduler.whatif`)
both use: day by day first on a big school (`scheduler.daywise.days_first`), done when the days join at their
bound; otherwise the week's search, started from the better of the days' joined plan and today's lottery; the best
of the three plans is the answer, with the lowest bound proven on the way. On a small school, given time, the week's
search starts with rows that say what whole teachers are worth to each day (`scheduler.day_cuts`); with two workers,
each teacher's week is priced on the second core meanwhile (`scheduler.teacher_prices`), from the moment the
search is sure to go on (after the first look, on a small school). Once the prices settle on a bound, the second
core searches the week capped at it, and the first search stops when that search proves a plan the best
(`_search_to_the_end`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass

from scheduler.baselines import lottery
from scheduler.day_cuts import JOIN_SECONDS, JOIN_SHARE, DayRows, add_day_value_rows
from scheduler.daywise import DaywisePlan, coverage_by_day, days_first
from scheduler.deadline import Deadline
from scheduler.domain import Status
from scheduler.lexicographic import LevelResult, LexicographicSolver
from scheduler.teacher_prices import TeacherPrices, TeacherPricesResult
from scheduler.warmstart import plan_values

Phase = Callable[[str], AbstractContextManager[None]]
"""Times a named part of the work (`scheduler.solve` adds it to `stats["phases"]`)."""
FoundElsewhere = Callable[[], tuple[int, list[float]] | None]
"""A plan proven the best outside the week's search, and its coverage (by variable index), once there is one."""


@contextmanager
def untimed(_name: str) -> Iterator[None]:
    yield


@dataclass
class Coverage:
    result: LevelResult
    days: DaywisePlan | None
    """Level 1 solved day by day, when it was (a big school)."""
    from_lottery: bool = False
    """Today's lottery's plan is the answer: neither the days nor the week's search found a better one in time."""
    day_rows: DayRows | None = None
    """The day-value rows the week's search started with (a small school given `SHARPEN_MIN_SECONDS`)."""
    teacher_prices: TeacherPricesResult | None = None
    """The bound with each teacher's week priced, found on the second core during the week's search."""


def solve_coverage(first: LexicographicSolver, days_seconds: float, week_seconds: Callable[[], float], *,
                   phase: Phase = untimed) -> Coverage:
    """Level 1 of `first.built` (a model without hired teachers): the days get `days_seconds` (they stop early when
    done); the week's search, when it is needed, `week_seconds()` as it starts."""
    built, config = first.built, first.config
    instance = built.instance
    days = None
    if days_first(built):
        with phase("daywise"):
            days = coverage_by_day(built, Deadline.after(days_seconds), config.backend)
    if days is not None and days.proven:
        assert days.values is not None
        return Coverage(first.accept("coverage", days.values, days.bound, days.seconds), days)
    # The days proved nothing (a day short of time may even have answered with an empty plan): today's lottery is
    # a plan too, if it keeps the pins. It is drawn before the week's search, out of the same time, and the better
    # of the two starts that search.
    plan = None
    with phase("fallback"):
        drawn = lottery(instance, config.seed, explain=False)
        if drawn.has_allocation and set(instance.fixed) <= set(drawn.assignments):
            plan = drawn
    days_value = days.value if days is not None and days.values is not None else -1
    start = None
    if plan is not None and plan.objective.coverage > days_value:
        start = plan_values(built, plan)
    elif days is not None:
        start = days.values
    first.hint(start)
    until = Deadline.after(week_seconds())
    prices: TeacherPrices | None = None

    def price_teachers(plan: list[float] | None) -> FoundElsewhere:
        """With two workers, the second core prices each teacher's week while the search goes on, then searches
        the week capped at their bound; the search asks the returned function whether that proved a plan."""
        nonlocal prices
        if config.workers > 1 and not built.hire_sessions:
            prices = TeacherPrices(built, until, seed=config.seed, plan=plan, then_search=True).start()
        return lambda: prices.found if prices is not None else None

    try:
        result, rows, sharpened = _week_search(first, until, start, sharpen=days is None, phase=phase,
                                               meanwhile=price_teachers)
    finally:
        priced = prices.result() if prices is not None else None
    # A bound proven outside the week's search: the days', the first look's and the week's relaxation with the
    # day-value rows, or the teachers' prices.
    proven = min((bound for bound in (days.bound if days is not None else sharpened,
                                      priced.bound if priced is not None else None) if bound is not None),
                 default=None)
    if not first.have_solution:  # a search without a plan reports no bound: demand is one
        result.bound = instance.demand()
    from_lottery = False
    known = max(days_value, plan.objective.coverage if plan is not None else -1)
    if result.status == Status.UNKNOWN or (first.have_solution and result.value < known):
        # The week's search found nothing better in time: the joined days' plan, or the lottery's, is the answer.
        bound = min(result.bound, proven if proven is not None else instance.demand())
        if days is not None and days.values is not None and days.value > result.value and (
                plan is None or days.value >= plan.objective.coverage):
            first.results.remove(result)
            result = first.accept("coverage", days.values, bound, result.seconds)
        elif plan is not None and plan.objective.coverage > result.value:
            first.results.remove(result)
            result = first.accept("coverage", plan_values(built, plan), bound, result.seconds)
            from_lottery = True
    if proven is not None and result.status in (Status.OPTIMAL, Status.FEASIBLE) and proven < result.bound:
        result.bound = proven
        result.status = Status.OPTIMAL if result.value >= result.bound else Status.FEASIBLE
    return Coverage(result, days, from_lottery, rows, priced)


SHARPEN_MIN_SECONDS = 3.0
"""The day-value rows (`scheduler.day_cuts`) may sharpen a small school's week search only when it has at least
this long: their searches take 0.6–0.9 CPU-s on a school of 150–300 pupils whose teachers' weeks bind, and with a
city batch's 3 s a school they proved fewer schools (153 of 183 against 162 without them, `docs/benchmarks.md`)."""
LOOK_SECONDS = 0.3
"""Before the rows, the week's search looks this long on its own: most small schools are proven by then, and the
rows' five day searches or more would only delay them. On 190 sampled city schools given 6 CPU-s each (0.5 s for
the levels after coverage), 180 were proven against 179 without the look, and the rows took 35 CPU-s in all
instead of 61 (`docs/benchmarks.md`). A look that ends unproven hands its plan to the rows; its bound still
counts."""
ROWS_MIN_VARIABLES = 900
"""The rows follow an unsettled look only on a week's model of at least this many variables. On a smaller one (a
school of under about 200 pupils) the week's search alone proves coverage in a second or two, and the rows' 25–35
day searches only delay it. On 121 city schools of 150–199 pupils at a batch's 6 s, the rows proved 116 against
119 without them, and the schools took 300 CPU-s against 199. From 900 variables on (the 200–350-pupil schools
where the teachers' weeks bind) they pay: 8 of the city's first 200 schools are proven only with them
(`docs/benchmarks.md`)."""
DAY_ROWS_SHARE = 0.4
"""At most this share of the week's search time goes to the rows before it; they stop sooner where the teachers'
weeks do not bind the relaxation (five day searches and one relaxation). Rows cut short still help: on the city's
small schools the search proves in one or two seconds with rows that brought the relaxation only part of the way.
A longer first look (1 s of 6) lost more of the search's tree than it saved (`docs/benchmarks.md`)."""


def _week_search(first: LexicographicSolver, until: Deadline, start: list[float] | None, *, sharpen: bool,
                 phase: Phase, meanwhile: Callable[[list[float] | None], FoundElsewhere]
                 ) -> tuple[LevelResult, DayRows | None, int | None]:
    """Level 1's week search within `until`; on a small school (`sharpen`) given `SHARPEN_MIN_SECONDS`, a first
    look of `LOOK_SECONDS`, and when that does not settle it, on a model of `ROWS_MIN_VARIABLES` or more, the
    day-value rows (from the best plan known, by variable index) before the search goes on. `meanwhile(plan)` is
    called with the best plan known once the search is sure to go on: at once, or after a look that did not settle
    it; it returns what the search asks to know whether a plan proven the best was found meanwhile
    (`_search_to_the_end`). Returns the level's one result, the rows (None where there were none), and the lowest
    bound the look and the rows proved (None without them)."""
    if not (sharpen and until.left() >= SHARPEN_MIN_SECONDS):
        found = meanwhile(start)
        with phase("solve"):
            result = _search_to_the_end(first, until, found)
        return result, None, None
    with phase("solve"):
        look = first.optimise("coverage", first.built.coverage_level(), maximise=True, seconds=LOOK_SECONDS)
    if look.status in (Status.OPTIMAL, Status.INFEASIBLE):
        return look, None, None
    first.results.remove(look)  # one result for the level: the search's, or the look's when the search found none
    if first.have_solution:
        start = first.values
    found = meanwhile(start)
    built = first.built
    rows = None
    if built.solver.NumVariables() >= ROWS_MIN_VARIABLES:
        with phase("day_rows"):
            rows = add_day_value_rows(built, until.earlier((1 - DAY_ROWS_SHARE) * until.left()),
                                      backend=first.config.backend, seed=first.config.seed, plan=start)
    bounds = [bound for bound in (rows.bound if rows is not None else None,
                                  look.bound if look.status == Status.FEASIBLE else None) if bound is not None]
    proven = min(bounds, default=None)
    best = look if look.status == Status.FEASIBLE else None
    if rows is not None and proven is not None and (best is None or best.value < proven):
        with phase("day_rows"):
            joined = rows.join(built, Deadline.after(min(JOIN_SECONDS, JOIN_SHARE * until.left())),
                               at_least=proven, seed=first.config.seed)
        if joined is not None and rows.joined is not None and rows.joined >= proven:
            # The days' plans make the best week there is: the level's answer, without a search.
            return first.accept("coverage", joined, proven, round(look.seconds + rows.join_seconds, 3)), rows, proven
    with phase("solve"):
        searched = _search_to_the_end(first, until, found)
    result = searched
    if best is not None and searched.status == Status.UNKNOWN:
        first.results[first.results.index(searched)] = result = best  # its plan is still the last values
    result.seconds = round(look.seconds + (rows.join_seconds if rows is not None else 0.0) + searched.seconds, 3)
    return result, rows, proven


def _search_to_the_end(first: LexicographicSolver, until: Deadline, found: FoundElsewhere) -> LevelResult:
    """The week's search within `until`, stopped once `found()` gives a plan proven the best elsewhere (the
    teachers' prices and the search after them, on the second core): that plan is the level's answer, unless the
    search's own is worth as much. Returns the level's one result."""
    coverage = first.built.coverage_level()
    elsewhere = found()
    if elsewhere is None:
        searched = first.optimise("coverage", coverage, maximise=True, seconds=until.left(),
                                  enough=lambda: found() is not None)
        elsewhere = found()
        if elsewhere is None or searched.status in (Status.OPTIMAL, Status.INFEASIBLE):
            return searched
        if searched.status == Status.FEASIBLE and searched.value >= elsewhere[0]:  # its own plan is as good
            searched.bound, searched.status = searched.value, Status.OPTIMAL
            return searched
        first.results.remove(searched)
        seconds = searched.seconds
    else:
        seconds = 0.0
    best, plan = elsewhere
    return first.accept("coverage", plan, best, seconds)
