"""Realistic instances: a Kunming primary school with homework time, clubs and extended care.

Everything is drawn from one `random.Random(seed)`, so (pupils, seed, tight) always gives the same school.
Sessions are sized from the requests actually drawn, so "normal" schools can seat most but not all of their
club-time demand and "tight" ones are clearly short of seats and teachers.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from scheduler.domain import Activity, Instance, Period, Pupil, Request, School, Session, Teacher

DISTRICTS = ("五华区", "盘龙区", "官渡区", "西山区", "呈贡区", "晋宁区", "东川区")
SCHOOL_NAMES = ("春城路", "翠湖", "金碧", "滇池路", "北京路", "人民路", "青年路", "龙泉", "金马", "海埂",
                "大观", "东风", "白塔", "书林街", "云大附", "明通", "南屏", "小康", "关上", "新迎")
SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程苏魏"
            "吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦方白邹孟熊秦邱江尹薛段雷侯龙史陶黎贺顾毛郝龚邵万严武戴")
CHILD_CHARS = ("子涵浩宇欣怡梓轩雨萱俊杰诗琪思远嘉博文一诺佳睿明晨瑞泽可馨"
               "妍若彤语桐奕辰铭皓然安心乐昊天依晗沐阳锦")
ADULT_CHARS = "丽娟敏静芳霞红燕玲伟强军勇平华明建国海波涛斌辉磊琳洁颖婷雪梅兰英秀云峰刚健超晓"

PERIODS = (Period("P1", "15:30", "16:30"), Period("P2", "16:30", "17:30"), Period("P3", "17:30", "18:30"))
WEEKDAYS = (1, 2, 3, 4, 5)
PRIORITY_WEIGHTS = {0: 1, 1: 2, 2: 4}

HOMEWORK = Activity("homework", "作业辅导", "homework", None)
CARE = Activity("care", "延时托管", "care", None)
CARE_ROOMS = ("礼堂", "食堂", "多功能厅", "图书馆", "体育馆")


@dataclass(frozen=True)
class Club:
    activity: Activity
    room: str
    capacity: tuple[int, int]
    grades: tuple[int, int]
    popularity: float


CLUBS = (
    Club(Activity("football", "足球", "sports", "sports"), "操场", (25, 40), (1, 6), 3.0),
    Club(Activity("basketball", "篮球", "sports", "sports"), "篮球场", (20, 30), (3, 6), 2.5),
    Club(Activity("pingpong", "乒乓球", "sports", "sports"), "乒乓球室", (20, 24), (1, 6), 2.0),
    Club(Activity("rope", "跳绳", "sports", "sports"), "风雨操场", (30, 40), (1, 4), 1.5),
    Club(Activity("art", "美术", "arts", "arts"), "美术室", (20, 35), (1, 6), 2.0),
    Club(Activity("calligraphy", "书法", "arts", "arts"), "书法室", (20, 30), (2, 6), 1.2),
    Club(Activity("crafts", "手工", "arts", "arts"), "手工室", (20, 30), (1, 3), 1.5),
    Club(Activity("choir", "合唱", "music", "music"), "音乐室", (30, 40), (1, 6), 1.5),
    Club(Activity("dance", "舞蹈", "music", "dance"), "舞蹈室", (20, 30), (1, 6), 2.5),
    Club(Activity("science", "科学实验", "science", "science"), "科学室", (20, 32), (3, 6), 2.5),
    Club(Activity("coding", "编程", "science", "computing"), "机房", (20, 40), (3, 6), 3.0),
    Club(Activity("go", "围棋", "thinking", "chess"), "棋艺室", (20, 30), (1, 6), 1.5),
    Club(Activity("reading", "阅读", "reading", "reading"), "阅览室", (25, 40), (1, 6), 1.2),
)

BAND_PARTITIONS: tuple[tuple[tuple[int, int], ...], ...] = (
    ((1, 2), (3, 4), (5, 6)),
    ((1, 2), (3, 6)),
    ((1, 3), (4, 6)),
)
PERIOD_SETS: tuple[tuple[tuple[str, ...], float], ...] = ((("P1",), 0.35), (("P1", "P2"), 0.45),
                                                          (("P1", "P2", "P3"), 0.20))


@dataclass(frozen=True)
class Tuning:
    """What separates a normal school from a tight one."""

    pupils_per_teacher: float
    club_share: float
    """Club seats per P2 request, per grade band and day."""
    homework_share: float
    """Homework-continuation seats per P2 request, per grade and day."""
    care_share: float
    """Extended-care seats per P3 request, per day."""


NORMAL = Tuning(pupils_per_teacher=17, club_share=0.62, homework_share=0.33, care_share=1.1)
TIGHT = Tuning(pupils_per_teacher=25, club_share=0.45, homework_share=0.25, care_share=0.7)


def generate(pupils: int, seed: int, tight: bool = False) -> Instance:
    """A school of exactly `pupils` pupils, the same for the same (pupils, seed, tight)."""
    if pupils < 1:
        raise ValueError(f"pupils must be >= 1, not {pupils}")
    return _Generator(pupils, seed, TIGHT if tight else NORMAL).build()


class _Generator:
    def __init__(self, pupils: int, seed: int, tuning: Tuning) -> None:
        self.rng = random.Random(seed)
        self.count = pupils
        self.seed = seed
        self.tuning = tuning
        self.sessions: list[Session] = []
        self.rooms_used: Counter[tuple[int, str, str]] = Counter()
        self.pupil_by_id: dict[str, Pupil] = {}

    def build(self) -> Instance:
        rng = self.rng
        district = rng.choice(DISTRICTS)
        school = School(f"KM-GEN-{self.seed}", f"昆明市{district}{rng.choice(SCHOOL_NAMES)}小学", district)
        classes = self._classes()
        pupils = self._pupils(classes)
        self.pupil_by_id = {p.id: p for p in pupils}
        plans = self._plans(pupils)
        self._homework_sessions(classes, pupils, plans)
        self._club_sessions(pupils, plans)
        self._care_sessions(pupils, plans)
        requests = self._requests(plans)
        activities = (HOMEWORK, *(club.activity for club in CLUBS), CARE)
        used = {s.activity for s in self.sessions}
        return Instance(
            school=school, term="2026-autumn", weekdays=WEEKDAYS, periods=PERIODS,
            priority_weights=dict(PRIORITY_WEIGHTS),
            activities=tuple(a for a in activities if a.id in used or a is HOMEWORK),
            sessions=tuple(self.sessions), teachers=self._teachers(), pupils=tuple(pupils), requests=requests,
        )

    # ------------------------------------------------------------ pupils

    def _classes(self) -> list[tuple[int, int, int]]:
        """(grade, class number, size) for every class; sizes add up to exactly the requested pupils."""
        rng = self.rng
        per_grade = min(12, max(1, round(self.count / 270)))
        if self.count >= 4 * 6 * 40:
            per_grade = max(4, per_grade)
        slots = [(grade, number) for grade in range(1, 7) for number in range(1, per_grade + 1)]
        average = self.count / len(slots)
        spread = max(0.0, min(4.0, average - 40.5, 49.5 - average)) if 40 <= average <= 50 else 0.1 * average
        weights = [average + rng.uniform(-spread, spread) for _ in slots]
        sizes = _apportion(self.count, weights)
        return [(grade, number, size) for (grade, number), size in zip(slots, sizes, strict=True) if size > 0]

    def _pupils(self, classes: list[tuple[int, int, int]]) -> list[Pupil]:
        rng = self.rng
        seats = [(grade, f"{grade}-{number}") for grade, number, size in classes for _ in range(size)]
        families: list[str | None] = [None] * len(seats)
        surnames = [rng.choice(SURNAMES) for _ in seats]
        priorities = [rng.choices((0, 1, 2), weights=(70, 25, 5))[0] for _ in seats]
        order = list(range(len(seats)))
        rng.shuffle(order)
        family_count = 0
        wanted_pairs = round(len(seats) * 0.05)
        for index in order:
            if family_count >= wanted_pairs:
                break
            if families[index] is not None:
                continue
            partners = [j for j in rng.sample(order, min(len(order), 20))
                        if families[j] is None and seats[j][0] != seats[index][0]]
            if not partners:
                continue
            family_count += 1
            partner = partners[0]
            families[index] = families[partner] = f"F{family_count:04d}"
            surnames[partner] = surnames[index]
            priorities[partner] = priorities[index]
        pupils = []
        for number, ((grade, class_name), family_id, surname, priority) in enumerate(
                zip(seats, families, surnames, priorities, strict=True), start=1):
            given_length = 1 if rng.random() < 0.2 else 2
            given = "".join(rng.choice(CHILD_CHARS) for _ in range(given_length))
            pupils.append(Pupil(f"P{number:05d}", surname + given, grade, class_name,
                                family_id or f"H{number:05d}", priority))
        return pupils

    def _plans(self, pupils: Sequence[Pupil]) -> dict[str, tuple[tuple[int, ...], tuple[str, ...]]]:
        """Who asks for care: (days, periods) per requesting pupil, in submission order.

        Siblings share their family's pickup times and their forms arrive together.
        """
        rng = self.rng
        share = rng.uniform(0.86, 0.91)
        families: dict[str, list[str]] = {}
        for pupil in pupils:
            families.setdefault(pupil.family or pupil.id, []).append(pupil.id)
        forms = [(members, self._plan()) for members in families.values() if rng.random() < share]
        rng.shuffle(forms)
        return {pupil: plan for members, plan in forms for pupil in members}

    def _plan(self) -> tuple[tuple[int, ...], tuple[str, ...]]:
        rng = self.rng
        days: tuple[int, ...] = WEEKDAYS
        if rng.random() >= 0.75:
            days = tuple(sorted(rng.sample(WEEKDAYS, rng.randint(2, 4))))
        periods = rng.choices([p for p, _ in PERIOD_SETS], weights=[w for _, w in PERIOD_SETS])[0]
        return days, periods

    # ------------------------------------------------------------ sessions

    def _add(self, activity: str, day: int, period: str, room: str, capacity: int, grades: tuple[int, int],
             pupils_per_teacher: int, min_pupils: int = 0) -> None:
        self.rooms_used[(day, period, room)] += 1
        used = self.rooms_used[(day, period, room)]
        name = room if used == 1 else f"{room}{used}"
        session_id = f"D{day}-{period}-{activity}-{len(self.sessions) + 1:04d}"
        self.sessions.append(Session(session_id, activity, day, period, name, capacity, grades,
                                     pupils_per_teacher, min_pupils))

    def _demand(self, pupils: Sequence[Pupil], plans: dict[str, tuple[tuple[int, ...], tuple[str, ...]]],
                period: str) -> Counter[tuple[int, int]]:
        """Requests for `period` per (day, grade)."""
        demand: Counter[tuple[int, int]] = Counter()
        for pupil in pupils:
            plan = plans.get(pupil.id)
            if plan is not None and period in plan[1]:
                for day in plan[0]:
                    demand[(day, pupil.grade)] += 1
        return demand

    def _homework_sessions(self, classes: list[tuple[int, int, int]], pupils: Sequence[Pupil],
                           plans: dict[str, tuple[tuple[int, ...], tuple[str, ...]]]) -> None:
        """P1 homework in every home classroom every day; P2 homework continuation in some classrooms."""
        rng = self.rng
        for day in WEEKDAYS:
            for grade, number, size in classes:
                self._add("homework", day, "P1", f"{grade}-{number}教室", size + rng.randint(2, 5),
                          (grade, grade), rng.randint(45, 55))
        demand = self._demand(pupils, plans, "P2")
        for day in WEEKDAYS:
            for grade in range(1, 7):
                rooms = [(g, n, s) for g, n, s in classes if g == grade]
                share = self.tuning.homework_share * rng.uniform(0.85, 1.15)
                target = math.ceil(demand[(day, grade)] * share)
                for g, n, size in rooms:
                    if target <= 0:
                        break
                    capacity = min(size + rng.randint(2, 5), max(target, 10))
                    self._add("homework", day, "P2", f"{g}-{n}教室", capacity, (g, g), rng.randint(45, 55))
                    target -= capacity

    def _club_sessions(self, pupils: Sequence[Pupil],
                       plans: dict[str, tuple[tuple[int, ...], tuple[str, ...]]]) -> None:
        """Clubs per grade band and day, seats about `club_share` of that band's P2 requests."""
        rng = self.rng
        demand = self._demand(pupils, plans, "P2")
        for day in WEEKDAYS:
            for band in rng.choice(BAND_PARTITIONS):
                requests = sum(demand[(day, grade)] for grade in range(band[0], band[1] + 1))
                target = requests * self.tuning.club_share * rng.uniform(0.9, 1.1)
                fitting = [c for c in CLUBS if c.grades[0] <= band[0] and band[1] <= c.grades[1]]
                runs: Counter[str] = Counter()
                seats = 0
                while seats < target and fitting:
                    club = rng.choices(fitting, weights=[c.popularity for c in fitting])[0]
                    runs[club.activity.id] += 1
                    if runs[club.activity.id] >= 2:
                        fitting.remove(club)
                    capacity = rng.randint(*club.capacity)
                    min_pupils = rng.randint(8, 12) if rng.random() < 0.4 else 0
                    self._add(club.activity.id, day, "P2", club.room, capacity, band, rng.randint(15, 25),
                              min_pupils)
                    seats += capacity

    def _care_sessions(self, pupils: Sequence[Pupil],
                       plans: dict[str, tuple[tuple[int, ...], tuple[str, ...]]]) -> None:
        """Extended care for all grades in the big rooms, seats about `care_share` of P3 requests."""
        rng = self.rng
        demand = self._demand(pupils, plans, "P3")
        for day in WEEKDAYS:
            requests = sum(demand[(day, grade)] for grade in range(1, 7))
            target = math.ceil(requests * self.tuning.care_share)
            rooms = list(CARE_ROOMS)
            rng.shuffle(rooms)
            high = 120 if self.tuning is NORMAL else 90
            index = 0
            while target >= 30 or (index == 0 and target > 0):
                capacity = rng.randint(60, high)
                self._add("care", day, "P3", rooms[index % len(rooms)], capacity, (1, 6), 30)
                target -= capacity
                index += 1

    # ------------------------------------------------------------ requests and teachers

    def _requests(self, plans: dict[str, tuple[tuple[int, ...], tuple[str, ...]]]) -> tuple[Request, ...]:
        """Requests in the submission order of `plans`, with ranked club preferences."""
        rng = self.rng
        clubs_for: dict[tuple[int, int], set[str]] = {}
        for session in self.sessions:
            if session.period == "P2" and session.activity not in (HOMEWORK.id, CARE.id):
                for grade in range(session.grades[0], session.grades[1] + 1):
                    clubs_for.setdefault((session.day, grade), set()).add(session.activity)
        popularity = {c.activity.id: c.popularity for c in CLUBS}
        requests = []
        for pupil_id, (days, periods) in plans.items():
            pupil = self.pupil_by_id[pupil_id]
            offered = sorted(set().union(*(clubs_for.get((day, pupil.grade), set()) for day in days)))
            if "P2" in periods:
                wanted = rng.choices((0, 1, 2, 3), weights=(5, 15, 40, 40))[0]
            else:
                wanted = rng.choices((0, 1, 2), weights=(75, 15, 10))[0]
            preferences: list[str] = []
            while offered and len(preferences) < wanted:
                choice = rng.choices(offered, weights=[popularity[a] for a in offered])[0]
                preferences.append(choice)
                offered.remove(choice)
            requests.append(Request(pupil.id, days, periods, tuple(preferences)))
        return tuple(requests)

    def _teachers(self) -> tuple[Teacher, ...]:
        """One teacher per `pupils_per_teacher` pupils; club skills in proportion to club staffing needs."""
        rng = self.rng
        count = max(3, round(self.count / self.tuning.pupils_per_teacher))
        activities = {club.activity.id: club.activity for club in CLUBS}
        need: Counter[str] = Counter()
        for session in self.sessions:
            activity = activities.get(session.activity)
            if activity is not None and activity.qualification is not None:
                need[activity.qualification] += math.ceil(session.capacity / session.pupils_per_teacher)
        tags = sorted(need)
        teachers = []
        for number in range(1, count + 1):
            skills = rng.choices((0, 1, 2), weights=(35, 50, 15))[0]
            qualifications: set[str] = set()
            while tags and len(qualifications) < min(skills, len(tags)):
                qualifications.add(rng.choices(tags, weights=[need[t] for t in tags])[0])
            care_rate = rng.uniform(0.3, 0.4)
            available = set()
            for day in WEEKDAYS:
                for period in ("P1", "P2"):
                    if rng.random() < 0.92:
                        available.add((day, period))
                if rng.random() < care_rate:
                    available.add((day, "P3"))
            given = "".join(rng.choice(ADULT_CHARS) for _ in range(rng.choice((1, 2))))
            teachers.append(Teacher(f"T{number:03d}", f"{rng.choice(SURNAMES)}{given}老师",
                                    frozenset(qualifications), frozenset(available), rng.randint(3, 8)))
        return tuple(teachers)


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` into whole parts proportional to `weights` (largest remainder)."""
    scale = total / sum(weights)
    exact = [w * scale for w in weights]
    parts = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(weights)), key=lambda i: exact[i] - parts[i], reverse=True)
    for i in by_remainder[: total - sum(parts)]:
        parts[i] += 1
    return parts
