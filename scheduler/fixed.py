"""Pinned pairs that break a hard rule by themselves, before any search: the admin must change them."""

from __future__ import annotations

from collections import Counter, defaultdict

from scheduler.domain import Instance


def check_fixed(instance: Instance) -> list[dict[str, str]]:
    """Every pinned (pupil, session) pair that breaks rules 2-6 on its own, with the reason."""
    broken: list[dict[str, str]] = []

    def report(pupil: str, session: str, reason: str) -> None:
        broken.append({"pupil": pupil, "session": session, "reason": reason})

    pairs = sorted({(p.pupil, p.session) for p in instance.fixed})
    by_slot: dict[tuple[str, int, str], list[str]] = defaultdict(list)
    for pupil_id, session_id in pairs:
        pupil = instance.pupil_by_id[pupil_id]
        session = instance.session_by_id[session_id]
        request = instance.request_by_pupil.get(pupil_id)
        if request is None:
            report(pupil_id, session_id, "rule 2: the pupil has no request")
        elif session.day not in request.days or session.period not in request.periods:
            report(pupil_id, session_id,
                   f"rule 2: the pupil did not request day {session.day} period {session.period}")
        if not session.admits_grade(pupil.grade):
            report(pupil_id, session_id,
                   f"rule 2: grade {pupil.grade} is outside the session's grades "
                   f"{session.grades[0]}-{session.grades[1]}")
        by_slot[(pupil_id, session.day, session.period)].append(session_id)
    for (pupil_id, day, period), sessions in sorted(by_slot.items()):
        if len(sessions) > 1:
            for session_id in sessions:
                report(pupil_id, session_id, f"rule 3: pinned to {len(sessions)} sessions on day {day} {period}")
    pinned = Counter(session_id for _, session_id in pairs)
    for session_id, count in sorted(pinned.items()):
        session = instance.session_by_id[session_id]
        if count > session.capacity:
            for pupil_id, sid in pairs:
                if sid == session_id:
                    report(pupil_id, session_id, f"rule 4: {count} pupils pinned, capacity {session.capacity}")
        activity = instance.activity_by_id[session.activity]
        able = [t for t in instance.teachers
                if t.can_lead(activity) and session.slot in t.available and t.max_sessions > 0]
        if len(able) * session.pupils_per_teacher < count:
            for pupil_id, sid in pairs:
                if sid == session_id:
                    report(pupil_id, session_id,
                           f"rule 6: only {len(able)} qualified, available teachers for {count} pinned pupils")
    return broken
