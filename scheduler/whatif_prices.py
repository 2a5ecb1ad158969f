"""A tighter bound on the seats advice must add: the slots again, with the weekly caps priced in (Lagrange).

The slots' bound (`scheduler.whatif_slots`) lets every teacher work every slot they are free, whatever their
weekly cap. Price each teacher's session at λ_t >= 0 (and a hired teacher's at μ >= 0): for every plan of the
week, seats = Σ_slots seats_s >= Σ_slots (seats_s + λ·used_s) - λ·caps, since the sessions used stay within the
caps. So Σ_slots min(seats_s + λ·used_s) - λ·caps bounds the week's seats for any prices; a subgradient search
raises the prices of teachers the slots over-use. Each slot's own proven bound stands in for its minimum, so the
bound holds even when a slot's search stops early.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict

from ortools.linear_solver import pywraplp

from scheduler.deadline import Deadline
from scheduler.lexicographic import SolverConfig, limit_time
from scheduler.model import AllocationModel, total
from scheduler.whatif_slots import _slots, build_slot, level_expr

logger = logging.getLogger(__name__)

STEP_SHRINK = 0.5
"""The step factor halves after this many rounds without a better bound."""
PATIENCE = 3
FIRST_STEP = 0.25
"""Polyak's step factor to start with; a full step overshoots (most caps are not binding)."""
MIN_SLOT_SECONDS = 0.2


def priced_bound(week: AllocationModel, deadline: Deadline, config: SolverConfig, *, most_hired: int,
                 most_qualified: int, upper: int) -> int:
    """The best Lagrangian bound on the week's seats found before `deadline` (0 when none); `upper` is the seats
    of a known plan, which steers the step size."""
    slots = _slots(week)
    models: list[AllocationModel] = []
    for i, slot in enumerate(slots):
        built = build_slot(week, slot, deadline.left() / (2 * (len(slots) - i)), config,
                           most_hired=most_hired, most_qualified=most_qualified)
        if built is None:
            return 0
        models.append(built[2])
    caps = {t.id: t.max_sessions for t in week.instance.teachers}
    hired_sessions = most_hired * week.hire_sessions
    prices: dict[str, float] = defaultdict(float)
    hired_price = 0.0
    factor, best, stale = FIRST_STEP, -math.inf, 0
    params = pywraplp.MPSolverParameters()
    params.SetDoubleParam(pywraplp.MPSolverParameters.RELATIVE_MIP_GAP, 0.0)
    while deadline.left() > MIN_SLOT_SECONDS * len(models):
        value = -sum(prices[t] * cap for t, cap in caps.items()) - hired_price * hired_sessions
        used: dict[str, float] = defaultdict(float)
        hired_used = 0.0
        for i, model in enumerate(models):
            solver = model.solver
            priced = [(var, prices[t]) for (t, _), var in model.leads.items() if prices[t] > 0]
            objective = level_expr(model, "seats") + total([p * var for var, p in priced])
            if hired_price > 0:
                objective += hired_price * total(list(model.hired_leads.values()))
            solver.Minimize(objective)
            limit_time(solver, deadline.left() / (len(models) - i), at_least_ms=50)
            code = solver.Solve(params)
            if code not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):
                return max(0, math.ceil(best - 1e-6)) if best > -math.inf else 0
            value += solver.Objective().Value() if code == pywraplp.Solver.OPTIMAL else solver.Objective().BestBound()
            for (t, _), var in model.leads.items():
                used[t] += var.solution_value()
            hired_used += sum(var.solution_value() for var in model.hired_leads.values())
        logger.debug("priced slots: bound %.1f, step factor %.3f", value, factor)
        if value > best + 1e-6:
            best, stale = value, 0
        else:
            stale += 1
            if stale >= PATIENCE:
                factor, stale = factor * STEP_SHRINK, 0
        if math.ceil(best - 1e-6) >= upper:
            break
        gradient = {t: used[t] - cap for t, cap in caps.items()}
        hired_gradient = hired_used - hired_sessions
        norm = sum(g * g for t, g in gradient.items() if g > 0 or prices[t] > 0)
        norm += hired_gradient ** 2 if hired_gradient > 0 or hired_price > 0 else 0.0
        if norm < 1e-9:
            break  # the slots' plans keep every cap: nothing to price
        step = factor * (upper - value) / norm
        for t, g in gradient.items():
            prices[t] = max(0.0, prices[t] + step * g)
        hired_price = max(0.0, hired_price + step * hired_gradient)
    return max(0, math.ceil(best - 1e-6)) if best > -math.inf else 0


