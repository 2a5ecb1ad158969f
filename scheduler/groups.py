"""Pupils who are interchangeable for the solver, grouped per day.

On one day, two pupils of the same grade who request the same periods, share the same pinned and previous
sessions that day and score the day's activities alike are interchangeable for every objective level. The model
counts pupils per group instead of deciding for each pupil: a 3,000-pupil school becomes a few hundred integers
per day. Groups nest: a `DayClass` (grade, periods, pins, previous) owns the seat variables, its
`PreferenceGroup`s (same scores) only split those seats by liked activity.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property

from scheduler.domain import Instance, Pupil, Request, Session


def lottery_key(seed: int, pupil_id: str, family: str | None = None) -> bytes:
    """A pupil's place in the lottery: uniform, reproducible for a seed, independent of input order.

    The first 8 bytes are the draw: blake2b of `"{seed}:{pupil_id}"`, or of `"{seed}:family:{family}"` for a
    pupil with a family, so siblings share one draw and sit next to each other in any order by this key; the
    pupil id after it breaks the tie between siblings.
    """
    token = f"family:{family}" if family else pupil_id
    return hashlib.blake2b(f"{seed}:{token}".encode(), digest_size=8).digest() + pupil_id.encode()


def lottery_seed(instance: Instance, configured: int) -> int:
    """The seed of the draw: the instance's own `lottery_seed` when it names one, else the solver's seed."""
    return configured if instance.lottery_seed is None else instance.lottery_seed


def lottery_order(instance: Instance, configured_seed: int) -> list[Request]:
    """Requests in the order of their pupils' draw: the one place the scheduler orders pupils by lottery."""
    seed = lottery_seed(instance, configured_seed)
    pupils = instance.pupil_by_id
    return sorted(instance.requests, key=lambda r: lottery_key(seed, r.pupil, pupils[r.pupil].family))


@dataclass
class PreferenceGroup:
    """Pupils of one `DayClass` who score every activity of the day alike (coverage splits by priority)."""

    scores: tuple[tuple[str, int], ...]
    pupils_by_priority: dict[int, list[str]] = field(default_factory=dict)

    @cached_property
    def size(self) -> int:
        """Counted once the group is complete (`build_day_classes` never asks while it fills groups)."""
        return sum(len(ids) for ids in self.pupils_by_priority.values())


@dataclass
class DayClass:
    """Pupils of one grade who on `day` need the same periods and share pins and previous sessions."""

    day: int
    grade: int
    periods: tuple[str, ...]
    fixed: tuple[str, ...]
    previous: tuple[str, ...]
    eligible: dict[str, list[Session]]
    """Per requested period, the sessions these pupils may sit in (only the pinned one where a pin exists)."""
    groups: dict[tuple[tuple[str, int], ...], PreferenceGroup]
    """Preference groups keyed by their scores."""

    @cached_property
    def name(self) -> str:
        """Unique among a day's classes and readable in a solver log: `d1_g3_P1-P2`, then pins and previous
        sessions when there are any (`d1_g3_P1-P2_pin-S3_prev-S4`)."""
        name = f"d{self.day}_g{self.grade}_{'-'.join(self.periods)}"
        if self.fixed:
            name += "_pin-" + "-".join(self.fixed)
        if self.previous:
            name += "_prev-" + "-".join(self.previous)
        return name

    @cached_property
    def size(self) -> int:
        """Counted once the class is complete, like `PreferenceGroup.size`."""
        return sum(group.size for group in self.groups.values())

    def sessions(self) -> Iterable[Session]:
        for sessions in self.eligible.values():
            yield from sessions


def _sessions_for(instance: Instance, pupil: Pupil, day: int, period: str, pinned: str | None) -> list[Session]:
    if pinned is not None:
        return [instance.session_by_id[pinned]]
    return [s for s in instance.sessions_by_slot.get((day, period), []) if s.admits_grade(pupil.grade)]


def build_day_classes(instance: Instance, *, by_preference: bool, seed: int) -> list[DayClass]:
    """Group every requested pupil-day; `by_preference=False` merges preference groups (enough for coverage).

    Each group lists its pupils in the order of the draw (`seed` unless the instance names its own), which
    decides who among them is seated.
    """
    fixed_by_pupil_day: dict[tuple[str, int], dict[str, str]] = defaultdict(dict)
    for pair in instance.fixed:
        session = instance.session_by_id[pair.session]
        fixed_by_pupil_day[(pair.pupil, session.day)][session.period] = session.id
    previous_by_pupil_day: dict[tuple[str, int], list[str]] = defaultdict(list)
    for pair in instance.previous:
        session = instance.session_by_id[pair.session]
        previous_by_pupil_day[(pair.pupil, session.day)].append(session.id)

    classes: dict[tuple[object, ...], DayClass] = {}
    for request in lottery_order(instance, seed):
        if not request.periods:
            continue
        pupil = instance.pupil_by_id[request.pupil]
        periods = tuple(sorted(request.periods, key=instance.period_index.__getitem__))
        for day in sorted(request.days):
            pins = fixed_by_pupil_day.get((pupil.id, day), {})
            fixed = tuple(sorted(pins.values()))
            previous = tuple(sorted(previous_by_pupil_day.get((pupil.id, day), [])))
            key = (day, pupil.grade, periods, fixed, previous)
            day_class = classes.get(key)
            if day_class is None:
                eligible = {q: _sessions_for(instance, pupil, day, q, pins.get(q)) for q in periods}
                day_class = DayClass(day, pupil.grade, periods, fixed, previous, eligible, {})
                classes[key] = day_class
            scores = _scores(instance, request, day_class) if by_preference else ()
            _add_to_group(day_class, scores, pupil)
    return sorted(classes.values(), key=lambda c: (c.day, c.grade, c.periods, c.fixed, c.previous))


def _scores(instance: Instance, request: Request, day_class: DayClass) -> tuple[tuple[str, int], ...]:
    """What each activity offered to the class that day is worth to this pupil; activities worth 0 are left
    out, so pupils who differ only in choices that score nothing stay interchangeable."""
    offered = {s.activity for s in day_class.sessions()}
    scores = ((activity, request.preference_score(activity, instance.rank_points))
              for activity in request.preferences if activity in offered)
    return tuple((activity, score) for activity, score in scores if score > 0)


def _add_to_group(day_class: DayClass, scores: tuple[tuple[str, int], ...], pupil: Pupil) -> None:
    group = day_class.groups.get(scores)
    if group is None:
        group = day_class.groups[scores] = PreferenceGroup(scores)
    group.pupils_by_priority.setdefault(pupil.priority, []).append(pupil.id)
