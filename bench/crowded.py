"""A crowded school: demand well above seats and teachers, drawn in a shape of its own.

`scheduler.generate` sizes its sessions from its own requests, one club band per day, homework in every
classroom. A solver tuned on those schools alone may do worse on schools built otherwise, so the benchmark also
draws schools here, sharing no code or tables with it: other period ids and times, clubs in the first period
too, overlapping grade ranges, study halls across two grades, five ranked choices with a steep popularity, siblings
in twos and threes with one form, priority weights 1/3/5, teachers with up to three skills and patchy weeks.
Seats are about 70 % of the pupil-periods asked for and teachers too few to open every session.
`crowded(pupils, seed)` gives the same school for the same arguments.
"""

from __future__ import annotations

import math
import random
from collections import Counter, defaultdict

from scheduler.domain import Activity, Instance, Period, Pupil, Request, School, Session, Teacher

PERIODS = (Period("A", "15:40", "16:40"), Period("B", "16:40", "17:40"), Period("C", "17:40", "18:30"))
DAYS = (1, 2, 3, 4, 5)
WEIGHTS = {0: 1, 1: 3, 2: 5}
STUDY = Activity("study", "自习", "study", None)
CARE = Activity("late", "晚托", "care", None)
CLUB_TAGS = (
    ("ball", "球类", "pe"), ("run", "田径", "pe"), ("swim", "游泳", "pe"), ("chess", "国际象棋", "mind"),
    ("xiangqi", "象棋", "mind"), ("paint", "绘画", "art"), ("clay", "陶艺", "art"), ("paper", "剪纸", "art"),
    ("piano", "钢琴", "music"), ("erhu", "二胡", "music"), ("drum", "鼓乐", "music"), ("robot", "机器人", "tech"),
    ("python", "编程", "tech"), ("lego", "乐高", "tech"), ("drama", "戏剧", "stage"), ("speech", "演讲", "stage"),
    ("english", "英语角", None), ("garden", "种植", None),
)
CLUBS = tuple(Activity(code, name, tag or "general", tag) for code, name, tag in CLUB_TAGS)
RANGES = ((1, 2), (1, 3), (2, 4), (3, 5), (3, 6), (4, 6), (5, 6), (1, 6))
PERIOD_PLANS = ((("A",), 25), (("A", "B"), 38), (("A", "B", "C"), 22), (("B",), 7), (("B", "C"), 8))
SEAT_SHARE = {"A": 0.72, "B": 0.68, "C": 0.62}
"""Seats in each period per pupil-day asking for it: a crowded school."""


def crowded(pupils: int = 3250, seed: int = 0) -> Instance:
    """A crowded school of exactly `pupils` pupils."""
    if pupils < 1:
        raise ValueError(f"pupils must be >= 1, not {pupils}")
    rng = random.Random(f"crowded-{pupils}-{seed}")
    roster = _pupils(rng, pupils)
    requests = _requests(rng, roster)
    sessions = _sessions(rng, roster, requests)
    return Instance(
        school=School(f"CROWDED-{pupils}-{seed}", f"拥挤小学{seed}", "测试区"), term="2026-autumn",
        weekdays=DAYS, periods=PERIODS, priority_weights=dict(WEIGHTS), activities=(STUDY, CARE, *CLUBS),
        sessions=tuple(sessions), teachers=_teachers(rng, sessions), pupils=tuple(roster), requests=requests,
    )


def _pupils(rng: random.Random, count: int) -> list[Pupil]:
    roster: list[Pupil] = []
    family = 0
    while len(roster) < count:
        family += 1
        size = min(count - len(roster), rng.choices((1, 2, 3), weights=(86, 12, 2))[0])
        priority = rng.choices((0, 1, 2), weights=(78, 16, 6))[0]
        for _ in range(size):
            grade = rng.randint(1, 6)
            number = len(roster) + 1
            roster.append(Pupil(f"C{number:05d}", f"学生{number}", grade, f"{grade}({rng.randint(1, 10)})",
                                f"FAM{family:05d}" if size > 1 else None, priority))
    return roster


def _requests(rng: random.Random, roster: list[Pupil]) -> tuple[Request, ...]:
    """One form per family (same days and periods); each child ranks up to five clubs of their grade."""
    popularity = {club.id: 1 / (rank + 1) ** 0.8 for rank, club in enumerate(rng.sample(CLUBS, len(CLUBS)))}
    by_family: dict[str, list[Pupil]] = defaultdict(list)
    for pupil in roster:
        by_family[pupil.family or pupil.id].append(pupil)
    requests = []
    for members in by_family.values():
        if rng.random() > 0.93:
            continue
        days = DAYS if rng.random() < 0.45 else tuple(sorted(rng.sample(DAYS, rng.randint(1, 4))))
        periods = rng.choices([p for p, _ in PERIOD_PLANS], weights=[w for _, w in PERIOD_PLANS])[0]
        for pupil in members:
            wanted = rng.choices((0, 1, 2, 3, 4, 5), weights=(10, 15, 20, 25, 15, 15))[0]
            clubs = list(popularity)
            ranked: list[str] = []
            while clubs and len(ranked) < wanted:
                choice = rng.choices(clubs, weights=[popularity[c] for c in clubs])[0]
                ranked.append(choice)
                clubs.remove(choice)
            requests.append(Request(pupil.id, days, periods, tuple(ranked)))
    return tuple(requests)


def _sessions(rng: random.Random, roster: list[Pupil], requests: tuple[Request, ...]) -> list[Session]:
    """Per day and period, seats for about `SEAT_SHARE` of the pupils asking, spread over grade ranges."""
    grade = {p.id: p.grade for p in roster}
    asking: Counter[tuple[int, str, int]] = Counter()
    liked: Counter[str] = Counter()
    for request in requests:
        liked.update(request.preferences[:2])
        for day in request.days:
            for period in request.periods:
                asking[(day, period, grade[request.pupil])] += 1
    clubs = [c for c in CLUBS if liked[c.id]] or list(CLUBS)
    sessions: list[Session] = []

    def add(activity: str, day: int, period: str, capacity: int, grades: tuple[int, int], ratio: int,
            minimum: int) -> None:
        sessions.append(Session(f"{activity}-{day}{period}-{len(sessions) + 1}", activity, day, period,
                                f"室{rng.randint(100, 499)}", capacity, grades, ratio, minimum))

    for day in DAYS:
        for period in ("A", "B", "C"):
            for lo, hi in ((1, 2), (3, 4), (5, 6)) if period != "C" else ((1, 3), (4, 6)):
                want = sum(asking[(day, period, g)] for g in range(lo, hi + 1))
                target = want * SEAT_SHARE[period] * rng.uniform(0.9, 1.1)
                club_part = {"A": 0.25, "B": 0.7, "C": 0.0}[period] * target
                while club_part > 0:
                    club = rng.choices(clubs, weights=[liked[c.id] + 1 for c in clubs])[0]
                    grades = rng.choice([r for r in RANGES if r[0] <= hi and lo <= r[1]])
                    capacity = rng.randint(12, 36)
                    minimum = rng.randint(5, 12) if rng.random() < 0.55 else 0
                    add(club.id, day, period, capacity, grades, rng.randint(10, 20), minimum)
                    club_part -= capacity * (hi - lo + 1) / (grades[1] - grades[0] + 1)
                    target -= capacity * (hi - lo + 1) / (grades[1] - grades[0] + 1)
                hall = STUDY.id if period != "C" else CARE.id
                while target > 0:
                    capacity = rng.randint(30, 70)
                    add(hall, day, period, capacity, (lo, hi), rng.randint(25, 45), 0)
                    target -= capacity
    return sessions


def _teachers(rng: random.Random, sessions: list[Session]) -> tuple[Teacher, ...]:
    """About 85 % of the teacher-sessions that a full school would need, qualified where the clubs are."""
    need = sum(math.ceil(s.capacity / s.pupils_per_teacher) for s in sessions)
    tags = Counter(c.qualification for c in CLUBS if c.qualification)
    teachers: list[Teacher] = []
    supplied = 0
    while supplied < 0.85 * need:
        number = len(teachers) + 1
        skills = frozenset(rng.sample(sorted(tags), rng.choices((0, 1, 2, 3), weights=(30, 40, 20, 10))[0]))
        available = frozenset((day, period) for day in DAYS for period, share in (("A", 0.85), ("B", 0.8),
                                                                                  ("C", 0.35))
                              if rng.random() < share)
        most = rng.randint(3, 10)
        supplied += min(most, len(available))
        teachers.append(Teacher(f"X{number:03d}", f"教师{number}", skills, available, most))
    return tuple(teachers)
