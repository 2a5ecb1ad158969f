"""Small random instances for property tests: a handful of pupils, sessions and teachers, every rule in play."""

from __future__ import annotations

import random

from scheduler.domain import (
    Activity,
    Assignment,
    Instance,
    Period,
    Pupil,
    Request,
    School,
    Session,
    Teacher,
)

PERIODS = (Period("P1", "15:30", "16:30"), Period("P2", "16:30", "17:30"), Period("P3", "17:30", "18:30"))
ACTIVITIES = (
    Activity("homework", "作业辅导", "homework", None),
    Activity("football", "足球", "sports", "sports"),
    Activity("art", "美术", "arts", "arts"),
    Activity("care", "延时托管", "care", None),
)
RANK_POINTS = ((3, 2, 1), (3, 2, 1), (5, 1), (2, 2, 2, 1), (1,), ())
"""The default most often, then flat, steep, short and empty lists."""


def random_instance(seed: int, *, pupils: int = 8, days: int = 2, with_fixed: bool = False,
                    with_previous: bool = False) -> Instance:
    rng = random.Random(seed)
    weekdays = tuple(range(1, days + 1))
    sessions = []
    for day in weekdays:
        for period in PERIODS:
            for _ in range(rng.randint(0, 2)):
                activity = rng.choice(ACTIVITIES)
                lo = rng.randint(1, 6)
                hi = rng.randint(lo, 6)
                sessions.append(Session(
                    id=f"S{len(sessions) + 1}", activity=activity.id, day=day, period=period.id,
                    room=f"R{rng.randint(1, 4)}", capacity=rng.randint(0, 4), grades=(lo, hi),
                    pupils_per_teacher=rng.randint(1, 3), min_pupils=rng.choice((0, 0, 2, 3)),
                ))
    teachers = []
    for t in range(rng.randint(1, 4)):
        slots = [(d, p.id) for d in weekdays for p in PERIODS if rng.random() < 0.6]
        quals = frozenset(q for q in ("sports", "arts") if rng.random() < 0.4)
        teachers.append(Teacher(f"T{t + 1}", f"教师{t + 1}", quals, frozenset(slots), rng.randint(0, 4)))
    pupil_rows, requests = [], []
    for i in range(pupils):
        pupil = Pupil(f"P{i + 1:02d}", f"学生{i + 1}", rng.randint(1, 6), "1-1", None, rng.choice((0, 0, 1, 2)))
        pupil_rows.append(pupil)
        if rng.random() < 0.9:
            req_days = tuple(d for d in weekdays if rng.random() < 0.8)
            k = rng.randint(1, 3)
            prefs = tuple(rng.sample([a.id for a in ACTIVITIES], rng.randint(0, 3)))
            requests.append(Request(pupil.id, req_days, tuple(p.id for p in PERIODS[:k]), prefs))
    fixed: list[Assignment] = []
    previous: list[Assignment] = []
    by_id = {p.id: p for p in pupil_rows}
    eligible = [(r.pupil, s.id) for r in requests for s in sessions
                if s.day in r.days and s.period in r.periods and s.admits_grade(by_id[r.pupil].grade)]
    if with_fixed and eligible:
        pupil, session = rng.choice(eligible)
        fixed.append(Assignment(pupil, session))
    if with_previous and eligible:
        previous = [Assignment(p, s) for p, s in rng.sample(eligible, min(len(eligible), 4))]
    rank_points = rng.choice(RANK_POINTS)
    return Instance(
        school=School("RND", "随机小学", "测试区"), term="t", weekdays=weekdays, periods=PERIODS,
        priority_weights={0: 1, 1: 2, 2: 4}, activities=ACTIVITIES, sessions=tuple(sessions),
        teachers=tuple(teachers), pupils=tuple(pupil_rows), requests=tuple(requests), fixed=tuple(fixed),
        previous=tuple(previous), rank_points=rank_points,
    )
