from __future__ import annotations

import time

from scheduler.domain import Assignment, Instance, Staffing, Unserved
from scheduler.explain import CODES, REASON_EN, REASON_ZH, explain, explain_unserved, reason_text
from scheduler.validation import covered_pupil_days
from tests.scheduler.builders import instance, pupil, request, session, teacher


def pairs(*items: tuple[str, str]) -> list[Assignment]:
    return [Assignment(p, s) for p, s in items]


def staff(*items: tuple[str, str]) -> list[Staffing]:
    return [Staffing(t, s) for t, s in items]


def only(inst: Instance, assignments: list[Assignment], staffing: list[Staffing],
         pupil_id: str = "A") -> Unserved:
    found = [u for u in explain_unserved(inst, assignments, staffing) if u.pupil == pupil_id]
    assert len(found) == 1, found
    return found[0]


def test_no_session_for_the_grade() -> None:
    inst = instance([session("S1", day=3, period="P3", grades=(1, 2))], [teacher("T1")],
                    [pupil("A", grade=3)], [request("A", days=(3,), periods=("P3",))])
    u = only(inst, [], [])
    assert (u.code, u.day) == ("no_session", 3)
    assert u.reason == "周三 P3：没有面向3年级的课后服务课程班"


def test_no_teacher_free() -> None:
    inst = instance([session("S1", "football")],
                    [teacher("T1", qualifications=("arts",)), teacher("T2", available=[(2, "P1")],
                                                                      qualifications=("sports",))],
                    [pupil("A")], [request("A")])
    u = only(inst, [], [])
    assert u.code == "no_teacher"
    assert "没有空闲的合格教师" in u.reason


def test_teacher_at_max_sessions_is_not_free() -> None:
    inst = instance([session("S1", day=1), session("S2", day=2)], [teacher("T1", max_sessions=1)],
                    [pupil("A"), pupil("B")], [request("A", days=(1,)), request("B", days=(2,))])
    u = only(inst, pairs(("B", "S2")), staff(("T1", "S2")))
    assert u.code == "no_teacher"


def test_no_seat_gives_seats_and_demand() -> None:
    inst = instance([session("S1", day=3, period="P3", capacity=2)], [teacher("T1")],
                    [pupil(p) for p in "ABC"], [request(p, days=(3,), periods=("P3",)) for p in "ABC"])
    u = only(inst, pairs(("B", "S1"), ("C", "S1")), staff(("T1", "S1")))
    assert u.code == "no_seat"
    assert u.reason == "周三 P3：3年级可用名额 2 个，需求 3 人"


def test_seats_limited_by_staff_when_no_teacher_is_free() -> None:
    inst = instance([session("S1", capacity=10, pupils_per_teacher=1)], [teacher("T1")],
                    [pupil("A"), pupil("B")], [request("A"), request("B")])
    u = only(inst, pairs(("B", "S1")), staff(("T1", "S1")))
    assert u.code == "no_seat"
    assert "可用名额 1 个，需求 2 人" in u.reason


def test_lost_to_priority() -> None:
    inst = instance([session("S1", capacity=1)], [teacher("T1")],
                    [pupil("A", priority=0), pupil("B", priority=2)], [request("A"), request("B")])
    u = only(inst, pairs(("B", "S1")), staff(("T1", "S1")))
    assert u.code == "lost_to_priority"
    assert "优先级更高" in u.reason


def test_equal_priority_is_no_seat_not_priority() -> None:
    inst = instance([session("S1", capacity=1)], [teacher("T1")],
                    [pupil("A", priority=1), pupil("B", priority=1)], [request("A"), request("B")])
    assert only(inst, pairs(("B", "S1")), staff(("T1", "S1"))).code == "no_seat"


def test_min_pupils_keeps_the_session_closed() -> None:
    inst = instance([session("S1", "art", min_pupils=3)], [teacher("T1", qualifications=("arts",))],
                    [pupil("A"), pupil("B")], [request("A"), request("B")])
    found = explain_unserved(inst, [], [])
    assert [u.code for u in found] == ["min_pupils", "min_pupils"]
    assert found[0].reason == "周一 P1：美术至少 3 人才开班（容量 30 人），该时段符合条件的申请 2 人"


def test_session_smaller_than_its_min_pupils_never_opens() -> None:
    inst = instance([session("S1", capacity=1, min_pupils=3)], [teacher("T1")],
                    [pupil(p) for p in "ABCD"], [request(p) for p in "ABCD"])
    assert {u.code for u in explain_unserved(inst, [], [])} == {"min_pupils"}


def test_partial_day_names_the_missing_period() -> None:
    inst = instance([session("S1", period="P1"), session("S2", period="P2")], [teacher("T1")], [pupil("A")],
                    [request("A", periods=("P1", "P2"))])
    u = only(inst, pairs(("A", "S1")), staff(("T1", "S1")))
    assert u.code == "partial_day"
    assert u.reason == "周一：已安排部分时段，P2 没有安排，当天未能全程托管"


def test_first_failing_period_wins_over_partial_day() -> None:
    inst = instance([session("S1", period="P1"), session("S2", period="P2", grades=(5, 6))], [teacher("T1")],
                    [pupil("A")], [request("A", periods=("P1", "P2"))])
    u = only(inst, pairs(("A", "S1")), staff(("T1", "S1")))
    assert u.code == "no_session"
    assert "P2" in u.reason


def test_not_assigned_when_room_was_left() -> None:
    inst = instance([session("S1", capacity=5)], [teacher("T1")], [pupil("A"), pupil("B")],
                    [request("A"), request("B")])
    assert only(inst, pairs(("B", "S1")), staff(("T1", "S1"))).code == "not_assigned"


def test_every_uncovered_pupil_day_is_explained_in_order() -> None:
    inst = instance([session("S1", day=1), session("S2", day=2, capacity=1)], [teacher("T1")],
                    [pupil(p) for p in "CBA"], [request(p, days=(2, 1)) for p in "CBA"])
    assignments, staffing = pairs(("C", "S2")), staff(("T1", "S2"))
    found = explain(inst, assignments, staffing)
    assert [(e.pupil, e.day) for e in found] == [("A", 1), ("A", 2), ("B", 1), ("B", 2), ("C", 1)]
    requested = {(r.pupil, d) for r in inst.requests for d in r.days}
    assert {(e.pupil, e.day) for e in found} == requested - covered_pupil_days(inst, assignments)


def test_english_gloss_and_tables_agree() -> None:
    assert set(REASON_EN) == set(REASON_ZH) == set(CODES)
    params: dict[str, str | int] = {"day": 3, "period": "P3", "grade": 3, "seats": 80, "demand": 112}
    assert reason_text("no_seat", params, "zh") == "周三 P3：3年级可用名额 80 个，需求 112 人"
    assert reason_text("no_seat", params, "en") == "Wed P3: 80 seats for grade 3, 112 pupils asked"
    inst = instance([], [], [pupil("A")], [request("A")])
    (e,) = explain(inst, [], [])
    assert e.text("en") == "Mon P1: no after-school session for grade 3"
    assert explain_unserved(inst, [], [], lang="en")[0].reason == e.text("en")


def test_fast_on_a_large_school() -> None:
    grades = range(1, 7)
    sessions = [session(f"S{d}{p}{g}", day=d, period=p, capacity=100, grades=(g, g))
                for d in range(1, 6) for p in ("P1", "P2", "P3") for g in grades]
    pupils = [pupil(f"P{i:04d}", grade=1 + i % 6, priority=i % 3) for i in range(3000)]
    requests = [request(p.id, days=(1, 2, 3, 4, 5), periods=("P1", "P2", "P3")) for p in pupils]
    teachers = [teacher(f"T{i}", max_sessions=20) for i in range(40)]
    inst = instance(sessions, teachers, pupils, requests)
    seated = [Assignment(p.id, f"S{d}P1{p.grade}") for p in pupils[:2000] for d in (1, 2)]
    started = time.perf_counter()
    found = explain(inst, seated, [Staffing("T0", s.id) for s in sessions[:10]])
    assert time.perf_counter() - started < 2.0
    assert len(found) == 3000 * 5
