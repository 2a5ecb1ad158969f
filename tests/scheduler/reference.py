"""An independent, deliberately naive formulation: one boolean per pupil-session and per teacher-session.

It is far too slow for real schools, but it shares no code with `scheduler.model`, so on small instances its
lexicographic optimum is a check on the aggregated model's.
"""

from __future__ import annotations

from ortools.sat.python import cp_model

from scheduler.domain import Instance


def reference_optimum(instance: Instance, seconds: float = 30.0, *, levels: int = 5) -> dict[str, int] | None:
    """The four objective levels (five steps), optimised in order, the first `levels` of them; None when
    infeasible."""
    m = cp_model.CpModel()
    attend = {}
    for request in instance.requests:
        pupil = instance.pupil_by_id[request.pupil]
        for s in instance.sessions:
            if s.day in request.days and s.period in request.periods and s.admits_grade(pupil.grade):
                attend[(pupil.id, s.id)] = m.new_bool_var(f"a_{pupil.id}_{s.id}")
    for pair in instance.fixed:
        if (pair.pupil, pair.session) not in attend:
            return None
        m.add(attend[(pair.pupil, pair.session)] == 1)
    by_pupil_slot: dict[tuple[str, int, str], list[cp_model.IntVar]] = {}
    for (p, sid), var in attend.items():
        s = instance.session_by_id[sid]
        by_pupil_slot.setdefault((p, s.day, s.period), []).append(var)
    for vars_ in by_pupil_slot.values():
        m.add_at_most_one(vars_)
    coverage = []
    for request in instance.requests:
        if not request.periods:
            continue
        weight = instance.weight(instance.pupil_by_id[request.pupil])
        for day in request.days:
            c = m.new_bool_var(f"c_{request.pupil}_{day}")
            for q in request.periods:
                m.add(sum(by_pupil_slot.get((request.pupil, day, q), [])) >= c)
            coverage.append(weight * c)
    lead = {}
    for t in instance.teachers:
        for s in instance.sessions:
            if t.can_lead(instance.activity_by_id[s.activity]) and s.slot in t.available:
                lead[(t.id, s.id)] = m.new_bool_var(f"l_{t.id}_{s.id}")
    for s in instance.sessions:
        pupils = [v for (p, sid), v in attend.items() if sid == s.id]
        teachers = [v for (t, sid), v in lead.items() if sid == s.id]
        n = sum(pupils)
        m.add(n <= s.capacity)
        runs = m.new_bool_var(f"runs_{s.id}")
        m.add(n >= max(1, s.min_pupils)).only_enforce_if(runs)
        m.add(n == 0).only_enforce_if(~runs)
        m.add(s.pupils_per_teacher * sum(teachers) >= n)
        for v in teachers:
            m.add_implication(v, runs)
    loads = []
    for t in instance.teachers:
        mine = [(sid, v) for (tid, sid), v in lead.items() if tid == t.id]
        m.add(sum(v for _, v in mine) <= t.max_sessions)
        slots: dict[tuple[int, str], list[cp_model.IntVar]] = {}
        for sid, v in mine:
            slots.setdefault(instance.session_by_id[sid].slot, []).append(v)
        for vs in slots.values():
            m.add_at_most_one(vs)
        loads.append(sum(v for _, v in mine))
    max_load = m.new_int_var(0, 100, "max_load")
    for load in loads:
        m.add(load <= max_load)
    previous = {(p.pupil, p.session) for p in instance.previous}
    stability = sum(v for key, v in attend.items() if key in previous)
    preference = []
    for (p, sid), v in attend.items():
        ranked = instance.request_by_pupil[p].preferences
        activity = instance.session_by_id[sid].activity
        rank = ranked.index(activity) if activity in ranked else len(instance.rank_points)
        score = instance.rank_points[rank] if rank < len(instance.rank_points) else 0
        if score:
            preference.append(score * v)
    steps = [("coverage", sum(coverage), True), ("stability", stability, True),
              ("preference", sum(preference), True), ("max_load", max_load, False),
              ("staffing", sum(lead.values()), False)]
    result: dict[str, int] = {}
    for name, expr, maximise in steps[:levels]:
        m.maximize(expr) if maximise else m.minimize(expr)
        solver = cp_model.CpSolver()
        solver.parameters.max_time_in_seconds = seconds
        solver.parameters.num_workers = 1
        code = solver.solve(m)
        if code == cp_model.INFEASIBLE:
            return None
        assert code == cp_model.OPTIMAL, f"reference did not prove {name}"
        value = int(round(solver.objective_value))
        result[name] = value
        m.add(expr >= value) if maximise else m.add(expr <= value)
    return result
