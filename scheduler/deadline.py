"""One point in time that every phase of a solve counts against: building, the levels, extraction.

`SolverConfig.time_limit` becomes one `Deadline` when `solve()` starts. Models check it while they are built
(`OutOfTime` abandons a model nobody will have time to solve), levels get a share of what is left, and a level
that starts after it gets no time at all and reports the best plan known.
"""

from __future__ import annotations

import time
from dataclasses import dataclass


class OutOfTime(Exception):
    """The deadline passed while a model was being built: the level it was for is skipped."""


@dataclass(frozen=True)
class Deadline:
    at: float
    """`time.monotonic()` seconds."""

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        """Seconds until the deadline, 0 once it has passed."""
        return max(0.0, self.at - time.monotonic())

    @property
    def passed(self) -> bool:
        return time.monotonic() >= self.at

    def check(self) -> None:
        """Raise `OutOfTime` once the deadline has passed."""
        if self.passed:
            raise OutOfTime(f"the deadline passed {time.monotonic() - self.at:.2f} s ago")

    def earlier(self, seconds: float) -> Deadline:
        """The deadline `seconds` sooner (time kept back for what must follow)."""
        return Deadline(self.at - seconds)
