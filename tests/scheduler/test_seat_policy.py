"""Who among equals gets the seats: each policy is checked against every other choice of pupils (brute force on
tiny buckets), and a solve under either policy scores the same on every objective level."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scheduler import fairness, validation
from scheduler.domain import Instance, Pupil, Request, Status
from scheduler.explain import explain_unserved
from scheduler.groups import lottery_key
from scheduler.io import InputError, instance_to_json, parse_instance
from scheduler.seat_policy import SEAT_POLICIES, Bucket, choose, reseat
from scheduler.solve import SolverConfig, solve
from tests.scheduler.builders import instance, session, teacher
from tests.scheduler.random_instances import random_instance

PROFILES = {
    "quick": {"choices": 30, "solves": 4},
    "ci": {"choices": 150, "solves": 12},
    "big": {"choices": 2000, "solves": 80},
}
"""Examples per profile (`SEAT_POLICY_PROFILE`, default `ci`): the brute force over choices is cheap, solves
are not."""
PROFILE = PROFILES[os.environ.get("SEAT_POLICY_PROFILE", "ci")]
CHOICES = settings(max_examples=PROFILE["choices"], deadline=None, derandomize=True,
                   suppress_health_check=[HealthCheck.too_slow])
SOLVES = settings(max_examples=PROFILE["solves"], deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])
REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------ the chooser alone, against brute force

def _buckets(seed: int) -> tuple[list[Bucket], dict[str, str], dict[str, int]]:
    """Up to 7 pupils in families of one to three over up to 3 days; each day splits them into buckets."""
    rng = random.Random(seed)
    pupils = [f"P{i}" for i in range(rng.randint(1, 7))]
    family = {p: rng.choice(("F1", "F2", "F3", f"own-{p}", f"own-{p}")) for p in pupils}
    rank = {p: i for i, p in enumerate(sorted(pupils, key=lambda p: (random.Random(family[p]).random(), p)))}
    buckets = []
    for _day in range(rng.randint(1, 3)):
        asking = [p for p in pupils if rng.random() < 0.8]
        parts = defaultdict(list)
        for p in asking:
            parts[rng.randint(0, 2)].append(p)
        for members in parts.values():
            ordered = tuple(sorted(members, key=rank.__getitem__))
            buckets.append(Bucket(ordered, rng.randint(0, len(ordered))))
    return buckets, family, rank


def _every_choice(buckets: Sequence[Bucket]) -> Iterable[tuple[tuple[str, ...], ...]]:
    return itertools.product(*(itertools.combinations(b.pupils, b.covered) for b in buckets))


def _measures(buckets: Sequence[Bucket], covered: Sequence[Sequence[str]], family: dict[str, str]) -> tuple[int, int]:
    """(families with nothing, pupils covered in every bucket they are in) of one choice."""
    asking = {p for b in buckets for p in b.pupils}
    got = {p for chosen in covered for p in chosen}
    nothing = {family[p] for p in asking} - {family[p] for p in got}
    missed = {p for b, chosen in zip(buckets, covered, strict=True) for p in b.pupils if p not in chosen}
    return len(nothing), len(asking - missed)


@CHOICES
@given(seed=st.integers(0, 10**6))
def test_spread_leaves_fewest_families_with_nothing(seed: int) -> None:
    buckets, family, rank = _buckets(seed)
    choice = choose("spread", buckets, family, rank)
    assert choice.proven
    for bucket, chosen in zip(buckets, choice.covered, strict=True):
        assert len(chosen) == bucket.covered and set(chosen) <= set(bucket.pupils)
    mine = _measures(buckets, choice.covered, family)[0]
    assert mine == min(_measures(buckets, other, family)[0] for other in _every_choice(buckets))


@CHOICES
@given(seed=st.integers(0, 10**6))
def test_whole_week_serves_most_pupils_every_day(seed: int) -> None:
    buckets, family, rank = _buckets(seed)
    choice = choose("whole_week", buckets, family, rank)
    assert choice.proven
    for bucket, chosen in zip(buckets, choice.covered, strict=True):
        assert len(chosen) == bucket.covered and set(chosen) <= set(bucket.pupils)
    mine = _measures(buckets, choice.covered, family)[1]
    assert mine == max(_measures(buckets, other, family)[1] for other in _every_choice(buckets))


def test_the_policies_differ_where_they_should() -> None:
    """Two days, one seat a day, a family of two (drawn first) and a pupil alone: `spread` gives the pupil alone
    a day, `whole_week` gives one of the siblings the whole week."""
    family = {"A1": "F", "A2": "F", "B": "B"}
    rank = {"A1": 0, "A2": 1, "B": 2}
    buckets = [Bucket(("A1", "A2", "B"), 1), Bucket(("A1", "B"), 1)]
    spread = choose("spread", buckets, family, rank)
    whole = choose("whole_week", buckets, family, rank)
    assert _measures(buckets, spread.covered, family) == (0, 0)
    assert _measures(buckets, whole.covered, family) == (1, 1)
    assert whole.covered == (("A1",), ("A1",))
    with pytest.raises(ValueError, match="unknown seat policy"):
        choose("first_come", buckets, family, rank)


def test_ties_follow_the_draw_and_siblings_stay_together() -> None:
    """One bucket, nothing to spread: both policies cover the first drawn, siblings (one draw) side by side; under
    `spread` a family placed in a bucket takes the bucket's other seats first."""
    family = {"A1": "F", "A2": "F", "B": "B", "C": "C"}
    rank = {"A1": 0, "A2": 1, "B": 2, "C": 3}
    one = [Bucket(("A1", "A2", "B", "C"), 2)]
    assert choose("whole_week", one, family, rank).covered == (("A1", "A2"),)
    # spread gives every family a seat while there are seats for them ...
    assert choose("spread", one, family, rank).covered == (("A1", "B"),)
    assert choose("spread", [Bucket(("A1", "A2", "B", "C"), 3)], family, rank).covered == (("A1", "B", "C"),)
    # ... and a family it places takes the bucket's other seats before the draw goes on (B and C have a day
    # elsewhere, so only A needs this bucket).
    rank = {"C": 0, "B": 1, "A1": 2, "A2": 3}
    buckets = [Bucket(("C", "B", "A1", "A2"), 3), Bucket(("B",), 1), Bucket(("C",), 1)]
    assert choose("spread", buckets, family, rank).covered[0] == ("C", "A1", "A2")


# ------------------------------------------------------------ whole solves under both policies

def _families_instance(seed: int) -> Instance:
    """One or two grades competing for too few seats on three days, in families of one to three."""
    rng = random.Random(seed)
    sessions = [session(f"S{day}{i}", activity, day, "P1", capacity=rng.randint(0, 3))
                for day in (1, 2, 3) for i, activity in enumerate(("homework", "art"))]
    pupils, requests = [], []
    for i in range(rng.randint(3, 8)):
        family = rng.choice((None, None, "F1", "F2", "F3"))
        pupils.append(Pupil(f"P{i:02d}", f"学生{i}", rng.choice((3, 3, 4)), "3-1", family, rng.choice((0, 0, 1))))
        days = tuple(d for d in (1, 2, 3) if rng.random() < 0.7) or (1,)
        requests.append(Request(pupils[-1].id, days, ("P1",), rng.choice(((), ("art",)))))
    built = instance(sessions=sessions, teachers=[teacher("T1", qualifications=("arts",)), teacher("T2")],
                     pupils=pupils, requests=requests)
    return dataclasses.replace(built, lottery_seed=rng.randint(0, 99))


def _classes(inst: Instance, solution_covered: set[tuple[str, int]]) -> list[tuple[list[str], int, int]]:
    """Pupils interchangeable on a day for every level (a partition at least as fine as the solver's): members,
    day, and how many of them the plan covers."""
    members: dict[tuple[object, ...], list[str]] = defaultdict(list)
    for request in inst.requests:
        pupil = inst.pupil_by_id[request.pupil]
        for day in request.days:
            scores = tuple((a, request.preference_score(a, inst.rank_points)) for a in request.preferences)
            members[(day, pupil.grade, request.periods, pupil.priority, scores)].append(pupil.id)
    return [(ids, int(str(key[0])), sum((p, key[0]) in solution_covered for p in ids))
            for key, ids in members.items()]


def _best_by_brute_force(inst: Instance, classes: list[tuple[list[str], int, int]]) -> tuple[int, int] | None:
    """(fewest families with nothing, most pupils served every day) over every choice with the same counts;
    None when there are too many choices to try."""
    options = [list(itertools.combinations(ids, n)) for ids, _, n in classes]
    count = 1
    for option in options:
        count *= len(option)
    if count > 5000:
        return None
    key = {p.id: fairness.family_key(p) for p in inst.pupils}
    fewest, most = len(inst.pupils) + 1, -1
    for combo in itertools.product(*options):
        covered = {(p, day) for (_, day, _), chosen in zip(classes, combo, strict=True) for p in chosen}
        families = {key[r.pupil] for r in inst.requests}
        nothing = families - {key[p] for p, _ in covered}
        whole = sum(all((r.pupil, d) in covered for d in r.days) for r in inst.requests)
        fewest, most = min(fewest, len(nothing)), max(most, whole)
    return fewest, most


@SOLVES
@given(seed=st.integers(0, 10**6))
def test_each_policy_beats_every_other_choice_with_the_same_objective(seed: int) -> None:
    inst = _families_instance(seed)
    results = {}
    for policy in SEAT_POLICIES:
        solution = solve(dataclasses.replace(inst, seat_policy=policy), SolverConfig(time_limit=20, workers=1))
        assert solution.status == Status.OPTIMAL
        assert validation.validate(inst, solution).ok
        results[policy] = solution
    spread, whole = results["spread"], results["whole_week"]
    assert spread.objective == whole.objective
    assert len(spread.staffing) == len(whole.staffing)
    for policy, solution in results.items():
        stats = solution.stats["seat_policy"]
        assert stats["policy"] == policy and stats["proven"]
        assert stats["families_with_nothing"] == fairness.families(inst, solution).with_nothing
        assert stats["pupils_fully_served"] == fairness.served(inst, solution).fully
    best = _best_by_brute_force(inst, _classes(inst, validation.covered_pupil_days(inst, spread.assignments)))
    if best is not None:
        assert spread.stats["seat_policy"]["families_with_nothing"] <= best[0]
    best = _best_by_brute_force(inst, _classes(inst, validation.covered_pupil_days(inst, whole.assignments)))
    if best is not None:
        assert whole.stats["seat_policy"]["pupils_fully_served"] >= best[1]


@SOLVES
@given(seed=st.integers(0, 10**6))
def test_objective_is_the_same_under_both_policies(seed: int) -> None:
    inst = random_instance(seed, pupils=8, days=2, with_fixed=seed % 3 == 0, with_previous=seed % 2 == 0)
    spread = solve(inst, SolverConfig(time_limit=20, workers=1))
    whole = solve(dataclasses.replace(inst, seat_policy="whole_week"), SolverConfig(time_limit=20, workers=1))
    assert spread.status == whole.status
    if spread.has_allocation:
        assert spread.objective == whole.objective
        assert validation.validate(inst, whole).ok and validation.validate(inst, spread).ok


def test_siblings_share_one_draw_among_equals() -> None:
    """One day, one bucket, seats for some: under `whole_week` (nothing to gain from any order) the covered are
    the first drawn, and siblings, drawn once, stand side by side in the draw."""
    pupils = [Pupil(f"P{i}", f"学生{i}", 3, "3-1", family, 0)
              for i, family in enumerate(("F1", None, "F1", "F2", None, "F2", "F1"))]
    requests = [Request(p.id, (1,), ("P1",), ()) for p in pupils]
    built = instance(sessions=[session("S1", "homework", 1, "P1", capacity=3)], teachers=[teacher("T1")],
                     pupils=pupils, requests=requests)
    inst = dataclasses.replace(built, lottery_seed=5, seat_policy="whole_week")
    solution = solve(inst, SolverConfig(time_limit=20, workers=1))
    order = sorted(pupils, key=lambda p: lottery_key(5, p.id, p.family))
    seated = {a.pupil for a in solution.assignments}
    assert seated == {p.id for p in order[:3]}
    for family in ("F1", "F2"):
        places = [i for i, p in enumerate(order) if p.family == family]
        assert places == list(range(places[0], places[-1] + 1))


# ------------------------------------------------------------ the field and the command line

def test_seat_policy_round_trips_and_defaults_to_spread(example_instance: Instance) -> None:
    data = instance_to_json(example_instance)
    assert "seat_policy" not in data and example_instance.seat_policy == "spread"
    whole = parse_instance({**data, "seat_policy": "whole_week"})
    assert whole.seat_policy == "whole_week"
    assert instance_to_json(whole)["seat_policy"] == "whole_week"
    with pytest.raises(InputError) as error:
        parse_instance({**data, "seat_policy": "first_come"})
    assert any(problem.startswith("seat_policy: must be one of") for problem in error.value.problems)


def test_cli_seat_policy_overrides_the_instance(tmp_path: Path, example_instance: Instance) -> None:
    path = tmp_path / "instance.json"
    path.write_text(json.dumps({**instance_to_json(example_instance), "seat_policy": "spread"}), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "scheduler", "solve", str(path), "--time-limit", "10",
                          "--seat-policy", "whole_week"], capture_output=True, text=True, cwd=REPO, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["stats"]["seat_policy"]["policy"] == "whole_week"
    bad = subprocess.run([sys.executable, "-m", "scheduler", "solve", str(path), "--seat-policy", "first_come"],
                         capture_output=True, text=True, cwd=REPO, check=False)
    assert bad.returncode == 2 and "seat-policy" in bad.stderr and "Traceback" not in bad.stderr


@SOLVES
@given(seed=st.integers(0, 10**6))
def test_reseating_a_plan_keeps_every_level(seed: int) -> None:
    inst = random_instance(seed, pupils=8, days=2, with_fixed=seed % 3 == 0, with_previous=seed % 2 == 0)
    solution = solve(inst, SolverConfig(time_limit=20, workers=1))
    if not solution.has_allocation:
        return
    for policy in SEAT_POLICIES:
        pairs, choice = reseat(inst, solution.assignments, policy)
        again = dataclasses.replace(solution, assignments=pairs)
        assert choice.policy == policy and choice.proven
        assert validation.validate(inst, dataclasses.replace(
            again, unserved=explain_unserved(inst, pairs, solution.staffing))).ok
        assert validation.coverage(inst, pairs) == solution.objective.coverage
        assert validation.stability(inst, pairs) == solution.objective.stability
        assert validation.preference(inst, pairs) == solution.objective.preference
