"""Edge cases of the lexicographic levels (scheduler/lexicographic.py)."""

from __future__ import annotations

from scheduler.lexicographic import trivial_bound


def test_the_trivial_bound_of_an_empty_sum_is_zero() -> None:
    """A level over nothing (`sum([])` is the int 0, e.g. advice with no hire possible) has bound 0, not a crash."""
    assert trivial_bound(sum([]), maximise=True) == 0.0
    assert trivial_bound(sum([]), maximise=False) == 0.0
